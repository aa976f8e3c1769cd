//! Step 1: an event becomes the desired content of its ledger item, once per event id, in
//! `occurred_at` order (ties broken by event id).

use super::*;

impl Writer {
    /// Merges `event` into its item's desired content, once per event id. `Ok(Err(reason))`:
    /// the event cannot be applied to this item (park it).
    pub(super) async fn merge(
        &self,
        event: &HrEvent,
        checked: &CheckedHrEvent,
        cause: &Cause,
    ) -> Result<Result<item::Model, String>, DbErr> {
        let person_id = event.person.person_id.as_str();
        let item_key = event.position.position_id.as_str();
        let event_id = event.event_id.as_str();
        let txn = self.inner.db.begin().await?;
        let latest = item::Entity::find()
            .filter(item::Column::PersonId.eq(person_id))
            .filter(item::Column::ItemKey.eq(item_key))
            .filter(item::Column::Section.ne(WORK_SECTION))
            .order_by_desc(item::Column::Generation)
            .one(&txn)
            .await?;
        let seen = event::Entity::find_by_id((HR_SOURCE.to_owned(), event_id.to_owned()))
            .one(&txn)
            .await?;
        if seen.is_some()
            && let Some(row) = latest
        {
            // Merged before (a redelivery, or the same event in another envelope): only the
            // write may still be missing.
            txn.commit().await?;
            return Ok(Ok(row));
        }
        if let Some(current) = latest
            .as_ref()
            .filter(|current| older_than_applied(event.occurred_at, event_id, current))
        {
            let message = format!(
                "{} event of {} is older than the last event applied ({} at {}); ignored",
                event.event_type.as_str(),
                event.occurred_at,
                current.source_event_id.as_deref().unwrap_or("?"),
                current.source_event_at
            );
            if seen.is_none() {
                insert_event(&txn, &SourceEvent::hr(event), cause, "stale").await?;
            }
            insert_note(
                &txn,
                current,
                Some(event_id),
                Note::new("merge", "stale").message(message),
            )
            .await?;
            txn.commit().await?;
            return Ok(Ok(current.clone()));
        }

        let (generation, previous, kind) = match &latest {
            None => (1, None, checked.kind),
            Some(current) => {
                let Body::Affiliation(current_kind, previous) = Body::of(current)? else {
                    return Err(DbErr::Custom(format!(
                        "writer_items {}: an HR position holds a work",
                        current.id
                    )));
                };
                let previous = *previous;
                let ended = previous.end_date.is_some();
                let previous_start = previous.start_date.as_ref().and_then(FuzzyDate::valid);
                if event.event_type == HrEventType::Hire && ended && checked.start != previous_start
                {
                    // A hire into a position whose item ended: a new appointment, a new item.
                    (current.generation + 1, None, checked.kind)
                } else if checked.kind == current_kind {
                    (current.generation, Some(previous), current_kind)
                } else if event.event_type != HrEventType::Hire
                    && checked.kind == AffiliationType::Employment
                {
                    // `section` defaults to employment when absent: a change or leave that
                    // does not name one keeps the item's.
                    (current.generation, Some(previous), current_kind)
                } else {
                    txn.rollback().await?;
                    return Ok(Err(format!(
                        "position {item_key:?} is a {current_kind} item; the event says {}. An item cannot move between ORCID sections: end this position and hire into a new position id",
                        checked.kind
                    )));
                }
            }
        };
        let self_id = self_external_id(person_id, item_key, generation);
        let body =
            match desired::merge(previous.as_ref(), checked, &self.inner.institution, self_id) {
                Ok(body) => body,
                Err(e) => {
                    txn.rollback().await?;
                    return Ok(Err(e.to_string()));
                }
            };
        let json = desired::to_json(&body).map_err(|e| DbErr::Custom(format!("desired: {e}")))?;
        let hash = desired::content_hash(&json);
        let now = Utc::now();
        let same_row = latest.filter(|row| row.generation == generation);
        let (row, outcome) = match same_row {
            Some(row) => {
                let changed = row.desired_hash != hash;
                let mut active = row.into_active_model();
                if changed {
                    active.desired = Set(json);
                    active.desired_hash = Set(hash);
                    active.attempts = Set(0);
                }
                active.source_event_id = Set(Some(event_id.to_owned()));
                active.source_event_at = Set(event.occurred_at);
                active.updated_at = Set(now);
                (
                    active.update(&txn).await?,
                    if changed { "merged" } else { "unchanged" },
                )
            }
            None => (
                new_row(
                    &SourceEvent::hr(event),
                    generation,
                    kind.path_segment(),
                    json,
                    hash,
                    now,
                )
                .insert(&txn)
                .await?,
                "created",
            ),
        };
        if seen.is_none() {
            insert_event(&txn, &SourceEvent::hr(event), cause, "merged").await?;
        }
        insert_note(
            &txn,
            &row,
            Some(event_id),
            Note::new("merge", outcome).message(format!(
                "{} event of {} recorded as the desired content",
                event.event_type.as_str(),
                event.occurred_at
            )),
        )
        .await?;
        txn.commit().await?;
        Ok(Ok(row))
    }

    /// Merges a work event: an upsert replaces the desired body, a delete asks for the item
    /// to go. Once per event id, in `occurred_at` order. `None`: nothing to do (a delete of a
    /// work never written).
    pub(super) async fn merge_work(
        &self,
        event: &WorkEvent,
        body: &orcid::model::Work,
        cause: &Cause,
    ) -> Result<Option<item::Model>, DbErr> {
        let source = SourceEvent::work(event);
        let txn = self.inner.db.begin().await?;
        let latest = item::Entity::find()
            .filter(item::Column::PersonId.eq(event.person_id.as_str()))
            .filter(item::Column::ItemKey.eq(event.work.work_id.as_str()))
            .filter(item::Column::Section.eq(WORK_SECTION))
            .one(&txn)
            .await?;
        let seen = event::Entity::find_by_id((WORK_SOURCE.to_owned(), event.event_id.clone()))
            .one(&txn)
            .await?;
        if seen.is_some() {
            txn.commit().await?;
            return Ok(latest);
        }
        if let Some(current) = latest
            .as_ref()
            .filter(|current| older_than_applied(event.occurred_at, &event.event_id, current))
        {
            insert_event(&txn, &source, cause, "stale").await?;
            insert_note(
                &txn,
                current,
                Some(&event.event_id),
                Note::new("merge", "stale").message(format!(
                    "{} event of {} is older than the last event applied; ignored",
                    source.event_type, event.occurred_at
                )),
            )
            .await?;
            txn.commit().await?;
            return Ok(Some(current.clone()));
        }
        let delete = event.event_type == WorkEventType::Delete;
        let (json, hash) = if delete {
            let Some(current) = &latest else {
                // Never written: nothing to remove.
                insert_event(&txn, &source, cause, "merged").await?;
                txn.commit().await?;
                return Ok(None);
            };
            // The deletion has a hash of its own, so "done" is written == desired as usual.
            let hash = desired::content_hash(&format!("delete\n{}", current.desired));
            (current.desired.clone(), hash)
        } else {
            let json =
                desired::to_json(body).map_err(|e| DbErr::Custom(format!("desired: {e}")))?;
            let hash = desired::content_hash(&json);
            (json, hash)
        };
        let now = Utc::now();
        let (row, outcome) = match latest {
            Some(row) => {
                let changed = row.desired_hash != hash;
                let mut active = row.into_active_model();
                if changed {
                    active.desired = Set(json);
                    active.desired_hash = Set(hash);
                    active.delete_requested = Set(delete);
                    active.attempts = Set(0);
                }
                active.source_event_id = Set(Some(event.event_id.clone()));
                active.source_event_at = Set(event.occurred_at);
                active.updated_at = Set(now);
                (
                    active.update(&txn).await?,
                    if changed { "merged" } else { "unchanged" },
                )
            }
            None => (
                new_row(&source, 1, WORK_SECTION, json, hash, now)
                    .insert(&txn)
                    .await?,
                "created",
            ),
        };
        insert_event(&txn, &source, cause, "merged").await?;
        insert_note(
            &txn,
            &row,
            Some(&event.event_id),
            Note::new("merge", outcome).message(format!(
                "{} event of {} recorded as the desired content",
                source.event_type, event.occurred_at
            )),
        )
        .await?;
        txn.commit().await?;
        Ok(Some(row))
    }
}

/// Whether an event comes before the last one applied to `current`: by `occurred_at`, and
/// for the same instant by event id (so two events of one instant end the same way whatever
/// order they arrive in: the greater id wins).
fn older_than_applied(
    occurred_at: chrono::DateTime<Utc>,
    event_id: &str,
    current: &item::Model,
) -> bool {
    use chrono::SubsecRound;
    let applied_id = current.source_event_id.as_deref().unwrap_or("");
    // The database keeps microseconds: compare at that precision, or an instant would not
    // equal itself after a round trip.
    (occurred_at.trunc_subsecs(6), event_id)
        < (current.source_event_at.trunc_subsecs(6), applied_id)
}

/// A new ledger row for the first event of an item (or of a rehire's generation): pending,
/// nothing written yet.
fn new_row(
    source: &SourceEvent<'_>,
    generation: i32,
    section: &str,
    desired: String,
    desired_hash: String,
    now: chrono::DateTime<Utc>,
) -> item::ActiveModel {
    item::ActiveModel {
        id: Set(Uuid::now_v7()),
        person_id: Set(source.person_id.to_owned()),
        item_key: Set(source.item_key.to_owned()),
        generation: Set(generation),
        section: Set(section.to_owned()),
        orcid: Set(None),
        put_code: Set(None),
        state: Set(ItemState::Pending.as_str().to_owned()),
        desired: Set(desired),
        desired_hash: Set(desired_hash),
        delete_requested: Set(false),
        written_hash: Set(None),
        source_event_id: Set(Some(source.event_id.to_owned())),
        source_event_at: Set(source.occurred_at),
        attempts: Set(0),
        last_error_status: Set(None),
        last_error_code: Set(None),
        last_error_message: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        written_at: Set(None),
    }
}

/// A source event as `writer_events` records it.
struct SourceEvent<'a> {
    source: &'a str,
    event_id: &'a str,
    person_id: &'a str,
    item_key: &'a str,
    event_type: &'a str,
    occurred_at: chrono::DateTime<Utc>,
}

impl<'a> SourceEvent<'a> {
    fn hr(event: &'a HrEvent) -> Self {
        Self {
            source: HR_SOURCE,
            event_id: &event.event_id,
            person_id: &event.person.person_id,
            item_key: &event.position.position_id,
            event_type: event.event_type.as_str(),
            occurred_at: event.occurred_at,
        }
    }

    fn work(event: &'a WorkEvent) -> Self {
        Self {
            source: WORK_SOURCE,
            event_id: &event.event_id,
            person_id: &event.person_id,
            item_key: &event.work.work_id,
            event_type: match event.event_type {
                WorkEventType::Upsert => "upsert",
                WorkEventType::Delete => "delete",
            },
            occurred_at: event.occurred_at,
        }
    }
}

async fn insert_event<C: ConnectionTrait>(
    conn: &C,
    event: &SourceEvent<'_>,
    cause: &Cause,
    outcome: &str,
) -> Result<(), DbErr> {
    event::ActiveModel {
        source: Set(event.source.to_owned()),
        event_id: Set(event.event_id.to_owned()),
        message_id: Set(cause.envelope.as_ref().map(|e| e.message_id.to_string())),
        person_id: Set(event.person_id.to_owned()),
        item_key: Set(event.item_key.to_owned()),
        event_type: Set(event.event_type.to_owned()),
        occurred_at: Set(event.occurred_at),
        outcome: Set(outcome.to_owned()),
        processed_at: Set(Utc::now()),
    }
    .insert(conn)
    .await?;
    Ok(())
}
