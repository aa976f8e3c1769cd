//! "Record updated" from the reader: items of ours the researcher deleted on ORCID become
//! `deleted_by_user` in the ledger, with no ORCID call; the sections it lists teach the
//! writer which sections are clean ([`super::clean`]).
//!
//! **Finding the items.** The event is keyed by iD (its partition key is the iD, not a person
//! id), and `person_id` is optional. A deleted item is found among the ledger rows of that iD
//! (`writer_items.orcid`) by its put code, and its section must be the event's: on one
//! record a put code names one item, so this is exact even when two person ids are connected
//! to the same iD. `person_id` and `source_id` are not used to match (logged only).
//!
//! **Concurrency.** The row is read again under the person's lock and changed only when it
//! still holds that put code, so an item written again in the meantime (a new put code) is
//! left alone.
//!
//! **Idempotent.** A row already `deleted_by_user` (or `deleted` by us) is left as it is:
//! a redelivered event changes nothing and publishes nothing again.
//!
//! **Policy.** With `writer.recreate_deleted = false` (the default) the item stays deleted:
//! later events for it are recorded and skipped. With `true` the row forgets the put code, so
//! the next event for the position (or work) writes the item again as a new one.

use bus::events::{DeletedItem, RecordUpdated};

use super::*;

impl Writer {
    /// Applies "record updated": every item in `deleted_items` that the ledger holds for this
    /// iD (same put code and section) becomes `deleted_by_user`, with a history row
    /// (`record-updated` / `deleted-by-user`) and "item failed" (`deleted-by-user`), like a
    /// 404 on update. Nothing is sent to ORCID. Items the ledger does not know are ignored.
    #[tracing::instrument(skip_all, fields(orcid = %update.orcid, deleted = update.deleted_items.len()))]
    pub async fn apply_record_updated(&self, update: &RecordUpdated, cause: &Cause) -> Outcome {
        if let Err(e) = self.learn_clean_sections(update).await {
            return db_retry(&e);
        }
        for deleted in &update.deleted_items {
            if let Err(e) = self.deleted_by_user(update, deleted, cause).await {
                return db_retry(&e);
            }
        }
        Outcome::Ack
    }

    async fn deleted_by_user(
        &self,
        update: &RecordUpdated,
        deleted: &DeletedItem,
        cause: &Cause,
    ) -> Result<(), DbErr> {
        let Ok(put_code) = i64::try_from(deleted.put_code) else {
            return Ok(());
        };
        let orcid = update.orcid.to_string();
        let candidates = item::Entity::find()
            .filter(item::Column::Orcid.eq(orcid.as_str()))
            .filter(item::Column::PutCode.eq(put_code))
            .order_by_asc(item::Column::Id)
            .all(&self.inner.db)
            .await?;
        let mut found = false;
        for candidate in candidates {
            if Kind::of(&candidate)?.event_section() != deleted.section {
                continue;
            }
            found = true;
            let _person = self.inner.locks.lock(&candidate.person_id).await;
            // Again, under the lock: a sync may have changed it meanwhile.
            let Some(mut row) = item::Entity::find_by_id(candidate.id)
                .one(&self.inner.db)
                .await?
            else {
                continue;
            };
            if row.put_code != Some(put_code) || row.orcid.as_deref() != Some(orcid.as_str()) {
                continue;
            }
            if matches!(
                state_of(&row),
                Some(ItemState::DeletedByUser | ItemState::Deleted)
            ) {
                continue;
            }
            if update
                .person_id
                .as_deref()
                .is_some_and(|p| p != row.person_id)
            {
                tracing::info!(
                    event_person_id = update.person_id.as_deref().unwrap_or(""),
                    person_id = %row.person_id,
                    "the deleted item belongs to another person id connected to the same iD"
                );
            }
            let recreate = self.inner.policy.recreate_deleted;
            let failure = Failure::plain(format!(
                "the researcher deleted the item on ORCID (put code {put_code}; seen by the reader at {})",
                update.read_at.to_rfc3339()
            ));
            let event =
                self.failed_event(&row, Some(update.orcid), "deleted-by-user", &failure, cause)?;
            let message = if recreate {
                "the researcher deleted the item on ORCID; the next event for it writes it again (writer.recreate_deleted = true)"
            } else {
                "the researcher deleted the item on ORCID; not written again (writer.recreate_deleted = false)"
            };
            self.apply(
                &mut row,
                Change {
                    state: Some(ItemState::DeletedByUser),
                    put_code: recreate.then_some(None),
                    unwritten: recreate,
                    failure: Some(failure.clone()),
                    ..Change::default()
                },
                None,
                Note::new("record-updated", "deleted-by-user")
                    .put_code(PutCode(deleted.put_code))
                    .message(message),
                Some(event),
            )
            .await?;
        }
        if !found {
            tracing::debug!(
                put_code,
                section = ?deleted.section,
                "a deleted item the ledger does not hold for this iD; ignored"
            );
        }
        Ok(())
    }
}
