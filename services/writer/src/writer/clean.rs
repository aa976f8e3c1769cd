//! Sections known clean: (iD, section) pairs holding no item of our client that a new row
//! could adopt, so a row never attempted there is posted at once — one ORCID call instead
//! of a listing and a post.
//!
//! **Why it is safe.** Only the writer posts with our client id, and every item it posts
//! carries our `self` id, so a section once clean stays clean: what reading first would
//! find (an item a lost answer created), ORCID's duplicate answer (409, 9021) names instead,
//! and it is adopted. A row already attempted always reads first. The exception is an
//! earlier integration posting with the same client id at the same time as idbridge; its
//! item shows up in the reader's next snapshot, which takes the section off the list here.
//!
//! **Where it is learnt.**
//! - The writer's own listing of a section ([`Writer::find_ours`]): every item of ours
//!   there carries one of our `self` ids.
//! - The reader's *first* snapshot of a record ("record updated" without
//!   `previous_read_at`, taken when the researcher connects): every item is listed with its
//!   source, so a section is clean when each item of our client in it is one the ledger
//!   holds (by put code on this iD). Researchers connect over weeks, so this read is not
//!   spent when HR's first load for them arrives.
//! - A later snapshot that shows an item of our client the ledger does not hold takes the
//!   section off the list.
//!
//! Kept in `writer_clean_sections` (every replica, after restarts) and, as a cache, in
//! memory. Failing to store or read it is logged and costs one listing, never a duplicate:
//! unknown means "read first".

use bus::events::{ItemRef, RecordStatus, Section};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;

use super::*;
use crate::desired::event_section;
use crate::ledger::clean;

/// What showed a section clean (`writer_clean_sections.basis`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Basis {
    /// The writer read the section.
    Listing,
    /// The reader's first snapshot of the record.
    Snapshot,
}

impl Basis {
    fn as_str(self) -> &'static str {
        match self {
            Self::Listing => "listing",
            Self::Snapshot => "snapshot",
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
        other => AffiliationType::ALL
            .into_iter()
            .find(|t| event_section(*t) == other)
            .map(AffiliationType::path_segment),
    }
}

impl Writer {
    /// Remembers `sections` of `orcid` as clean, in memory and in the database.
    pub(super) async fn mark_clean(
        &self,
        orcid: &OrcidId,
        sections: &[&str],
        basis: Basis,
        seen_at: DateTime<Utc>,
    ) {
        if sections.is_empty() {
            return;
        }
        self.remember_clean(orcid, sections);
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
                    .to_owned(),
            )
            .exec_without_returning(&self.inner.db)
            .await;
        if let Err(e) = stored {
            tracing::warn!(
                error = %e,
                "could not store sections known clean; another replica or a restart reads them once more"
            );
        }
    }

    /// Whether `section` of `orcid` is known clean (memory, then the database). A database
    /// error answers "not known": the caller reads first.
    pub(super) async fn is_clean(&self, orcid: &OrcidId, section: &str) -> bool {
        let key = section_key(orcid, section);
        if self.clean_memory().contains(&key) {
            return true;
        }
        match clean::Entity::find_by_id((orcid.to_string(), section.to_owned()))
            .one(&self.inner.db)
            .await
        {
            Ok(Some(_)) => {
                self.remember_clean(orcid, &[section]);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not look up a section known clean; reading it first");
                false
            }
        }
    }

    /// Takes `sections` of `orcid` off the list (memory of this process and the database).
    async fn forget_clean(&self, orcid: &OrcidId, sections: &[&str]) -> Result<(), DbErr> {
        if sections.is_empty() {
            return Ok(());
        }
        {
            let mut memory = self.clean_memory();
            for section in sections {
                memory.remove(&section_key(orcid, section));
            }
        }
        clean::Entity::delete_many()
            .filter(clean::Column::Orcid.eq(orcid.to_string()))
            .filter(clean::Column::Section.is_in(sections.iter().copied()))
            .exec(&self.inner.db)
            .await?;
        Ok(())
    }

    /// Learns from "record updated": a first snapshot marks every section in which each
    /// item of our client is one the ledger holds; any snapshot takes off the list a
    /// section showing an item of our client the ledger does not hold. Nothing is learnt
    /// from a record that is not active (its items are not listed).
    pub(super) async fn learn_clean_sections(&self, update: &RecordUpdated) -> Result<(), DbErr> {
        if update
            .status
            .is_some_and(|status| status != RecordStatus::Active)
        {
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
                .filter(item::Column::Orcid.eq(update.orcid.to_string()))
                .filter(item::Column::PutCode.is_not_null())
                .all(&self.inner.db)
                .await?
                .into_iter()
                .filter_map(|row| row.put_code.map(|put_code| (row.section, put_code)))
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
                "the record holds items of our client the ledger does not; those sections are read before a first post"
            );
        }
        self.forget_clean(&update.orcid, &dirty).await?;
        if update.previous_read_at.is_none() {
            self.mark_clean(&update.orcid, &clean, Basis::Snapshot, update.read_at)
                .await;
        }
        Ok(())
    }

    fn remember_clean(&self, orcid: &OrcidId, sections: &[&str]) {
        let mut memory = self.clean_memory();
        if memory.len() + sections.len() > CLEAN_SECTIONS_MAX {
            memory.clear();
        }
        for section in sections {
            memory.insert(section_key(orcid, section));
        }
    }

    fn clean_memory(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.inner
            .clean_sections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
