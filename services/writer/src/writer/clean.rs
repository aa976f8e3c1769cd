//! Sections known clean: (iD, section) pairs holding no item of our client that a new row
//! could adopt, so a row never attempted there is posted at once — one ORCID call instead
//! of a listing and a post.
//!
//! **Why it is safe.** Only the writer posts with our client id, and every item it posts
//! carries our `self` id, so a section once clean stays clean: what reading first would
//! find (an item a lost answer created), ORCID's duplicate answer (409, 9021) names instead,
//! and it is adopted. A row already attempted always reads first. The exception is an
//! earlier integration still posting with the same client id; its item shows up in the
//! reader's next snapshot (the reader and webhook receiver must run for that), which marks the
//! section dirty here. Between that post and that snapshot a first item of ours there could
//! still be posted beside it.
//!
//! **Where it is learnt.**
//! - The writer's own listing of a section ([`Writer::find_ours`]): every item of ours
//!   there carries one of our `self` ids.
//! - The reader's *first* snapshot of an active record ("record updated" with `status`
//!   active and no `previous_read_at`, taken when the researcher connects): every item is
//!   listed with its source, so a section is clean when each item of our client in it is one
//!   the ledger holds (by put code on this iD, same section). HR's first load for researchers
//!   who connected earlier then costs one call per item; rows already waiting when a
//!   researcher connects are posted on "connection ready", usually before that snapshot, and
//!   read first.
//! - Any snapshot that shows an item of our client the ledger does not hold marks the
//!   section dirty (a tombstone, so an older "clean" arriving late — a retried message, a
//!   replayed one, a slow listing — cannot undo it: the newer `seen_at` wins either way).
//!
//! Kept in `writer_clean_sections` only (no cache: one primary-key lookup per never-attempted
//! row, so every replica sees a section turn dirty at once). Failing to store or read it is
//! logged and costs one listing, never a duplicate: unknown means "read first".

use bus::events::{ItemRef, RecordStatus, Section};
use chrono::{DateTime, Utc};
use sea_orm::QuerySelect;
use sea_orm::sea_query::OnConflict;

use super::*;
use crate::desired::affiliation_type;
use crate::ledger::clean;

/// What a row of `writer_clean_sections` says (its `basis`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Basis {
    /// Clean: the writer read the section.
    Listing,
    /// Clean: the reader's first snapshot of the record.
    Snapshot,
    /// Not clean: a snapshot showed an item of our client the ledger does not hold.
    Dirty,
}

impl Basis {
    fn as_str(self) -> &'static str {
        match self {
            Self::Listing => "listing",
            Self::Snapshot => "snapshot",
            Self::Dirty => "dirty",
        }
    }
}

/// The ledger's section names (`writer_items.section`) of every section the writer writes.
fn writer_sections() -> impl Iterator<Item = &'static str> {
    AffiliationType::ALL
        .into_iter()
        .map(AffiliationType::path_segment)
        .chain(std::iter::once(WORK_SECTION))
}

/// The ledger's section name of an event section; `None` for sections the writer does not
/// write (fundings).
fn ledger_section(section: Section) -> Option<&'static str> {
    match section {
        Section::Work => Some(WORK_SECTION),
        other => other
            .affiliation()
            .map(|a| affiliation_type(a).path_segment()),
    }
}

impl Writer {
    /// Records what was seen of `sections` of `orcid` at `seen_at`, unless something newer
    /// is recorded already. A failure is logged: the sections are then read first.
    pub(super) async fn record_sections(
        &self,
        orcid: &OrcidId,
        sections: &[&str],
        basis: Basis,
        seen_at: DateTime<Utc>,
    ) {
        if sections.is_empty() {
            return;
        }
        let rows = sections.iter().map(|section| clean::ActiveModel {
            orcid: Set(orcid.to_string()),
            section: Set((*section).to_owned()),
            basis: Set(basis.as_str().to_owned()),
            seen_at: Set(seen_at),
        });
        let stored = clean::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([clean::Column::Orcid, clean::Column::Section])
                    .update_columns([clean::Column::Basis, clean::Column::SeenAt])
                    .action_and_where(Expr::cust(
                        "excluded.seen_at > writer_clean_sections.seen_at",
                    ))
                    .to_owned(),
            )
            .exec_without_returning(&self.inner.db)
            .await;
        if let Err(e) = stored {
            tracing::warn!(
                error = %e,
                basis = basis.as_str(),
                "could not record what a listing or snapshot showed of a record's sections; they are read before a first post"
            );
        }
    }

    /// Whether `section` of `orcid` is known clean. A database error answers "not known":
    /// the caller reads first.
    pub(super) async fn is_clean(&self, orcid: &OrcidId, section: &str) -> bool {
        match clean::Entity::find_by_id((orcid.to_string(), section.to_owned()))
            .one(&self.inner.db)
            .await
        {
            Ok(found) => found.is_some_and(|row| row.basis != Basis::Dirty.as_str()),
            Err(e) => {
                tracing::warn!(error = %e, "could not look up whether a section is known clean; reading it first");
                false
            }
        }
    }

    /// Learns from "record updated" (see the module docs). Nothing is learnt from a message
    /// without `status` (an older producer's, whose item lists may be absent) or from a
    /// record that is not active (its items are not listed).
    pub(super) async fn learn_clean_sections(&self, update: &RecordUpdated) -> Result<(), DbErr> {
        if update.status != Some(RecordStatus::Active) {
            return Ok(());
        }
        let client_id = self.inner.orcid.client_id();
        let ours: Vec<&ItemRef> = update
            .added
            .iter()
            .filter(|i| i.source_client_id.as_deref() == Some(client_id))
            .collect();
        let held: HashSet<(String, i64)> = if ours.is_empty() {
            HashSet::new()
        } else {
            item::Entity::find()
                .select_only()
                .column(item::Column::Section)
                .column(item::Column::PutCode)
                .filter(item::Column::Orcid.eq(update.orcid.to_string()))
                .filter(item::Column::PutCode.is_not_null())
                .into_tuple::<(String, Option<i64>)>()
                .all(&self.inner.db)
                .await?
                .into_iter()
                .filter_map(|(section, put_code)| put_code.map(|p| (section, p)))
                .collect()
        };
        let unknown_item_of_ours = |section: &str| {
            ours.iter().any(|i| {
                ledger_section(i.section) == Some(section)
                    && !i64::try_from(i.put_code)
                        .is_ok_and(|put_code| held.contains(&(section.to_owned(), put_code)))
            })
        };
        let (dirty, clean): (Vec<&str>, Vec<&str>) =
            writer_sections().partition(|section| unknown_item_of_ours(section));
        if !dirty.is_empty() {
            tracing::info!(
                sections = ?dirty,
                "the record holds items of our client the ledger does not hold (an earlier integration's, or ours not committed yet); those sections are read before a first post"
            );
        }
        self.record_sections(&update.orcid, &dirty, Basis::Dirty, update.read_at)
            .await;
        if update.previous_read_at.is_none() {
            self.record_sections(&update.orcid, &clean, Basis::Snapshot, update.read_at)
                .await;
        }
        Ok(())
    }

    /// Marks `section` of `orcid` dirty now: a row there left the record (the person moved
    /// to another iD) with the item still on it, so it may be adoptable by another row.
    pub(super) async fn mark_dirty(&self, orcid: &OrcidId, section: &str) {
        self.record_sections(orcid, &[section], Basis::Dirty, Utc::now())
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_section_the_writer_writes_has_a_ledger_name() {
        let mut named: Vec<&str> = [
            Section::Employment,
            Section::Education,
            Section::Qualification,
            Section::InvitedPosition,
            Section::Distinction,
            Section::Membership,
            Section::Service,
            Section::Work,
        ]
        .into_iter()
        .filter_map(ledger_section)
        .collect();
        let mut all: Vec<&str> = writer_sections().collect();
        named.sort_unstable();
        all.sort_unstable();
        assert_eq!(named, all);
        assert_eq!(ledger_section(Section::Funding), None);
        assert_eq!(
            ledger_section(Section::InvitedPosition),
            Some("invited-position")
        );
    }
}
