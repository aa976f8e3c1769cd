//! What changed between two snapshots of a record: a pure function, unit-tested.
//!
//! Items are keyed by section and put code. An item present now and not before is
//! **added**; present before and not now, **removed**; present in both with another content
//! hash, **changed**. Items of idbridge's own client that were removed are the
//! **deleted items** the writer's ledger marks "deleted by the user".

use std::collections::BTreeMap;

use bus::events::{DeletedItem, ItemRef, Section};

use crate::snapshot::SnapshotItem;

/// The difference between a previous snapshot's items and the current ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Items not in the previous snapshot (all of them when there was none).
    pub added: Vec<SnapshotItem>,
    /// Items whose content hash differs.
    pub changed: Vec<SnapshotItem>,
    /// Items of the previous snapshot that are gone (as they were then).
    pub removed: Vec<SnapshotItem>,
}

fn key(item: &SnapshotItem) -> (u8, u64) {
    (section_rank(item.section), item.put_code)
}

/// The order sections are reported in (the order of `bus::events::Section`).
pub fn section_rank(section: Section) -> u8 {
    match section {
        Section::Employment => 0,
        Section::Education => 1,
        Section::Qualification => 2,
        Section::InvitedPosition => 3,
        Section::Distinction => 4,
        Section::Membership => 5,
        Section::Service => 6,
        Section::Work => 7,
        Section::Funding => 8,
    }
}

/// Compares `previous` (`None`: no snapshot yet) with `current`. Every list comes out sorted
/// by section, then put code.
pub fn diff(previous: Option<&[SnapshotItem]>, current: &[SnapshotItem]) -> Diff {
    let before: BTreeMap<(u8, u64), &SnapshotItem> = previous
        .unwrap_or_default()
        .iter()
        .map(|i| (key(i), i))
        .collect();
    let now: BTreeMap<(u8, u64), &SnapshotItem> = current.iter().map(|i| (key(i), i)).collect();
    let mut out = Diff::default();
    for (k, item) in &now {
        match before.get(k) {
            None => out.added.push((*item).clone()),
            Some(old) if old.content_hash != item.content_hash => {
                out.changed.push((*item).clone());
            }
            Some(_) => {}
        }
    }
    for (k, item) in &before {
        if !now.contains_key(k) {
            out.removed.push((*item).clone());
        }
    }
    out
}

impl Diff {
    /// Nothing added, changed or removed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Sections with any difference, in section order, each once.
    pub fn changed_sections(&self) -> Vec<Section> {
        let mut sections: Vec<Section> = self
            .added
            .iter()
            .chain(&self.changed)
            .chain(&self.removed)
            .map(|i| i.section)
            .collect();
        sections.sort_by_key(|s| section_rank(*s));
        sections.dedup();
        sections
    }

    /// Removed items whose source is the member client `client_id` (ours): the researcher
    /// deleted what idbridge wrote.
    pub fn deleted_items(&self, client_id: &str) -> Vec<DeletedItem> {
        self.removed
            .iter()
            .filter(|i| i.source_client_id.as_deref() == Some(client_id))
            .map(|i| DeletedItem {
                section: i.section,
                put_code: i.put_code,
                source_id: None,
            })
            .collect()
    }
}

/// An item as the event lists it.
pub fn item_ref(item: &SnapshotItem) -> ItemRef {
    ItemRef {
        section: item.section,
        put_code: item.put_code,
        source_client_id: item.source_client_id.clone(),
        title: item.title.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "APP-OURS000000000001";

    fn item(section: Section, put_code: u64, source: Option<&str>, hash: &str) -> SnapshotItem {
        SnapshotItem {
            section,
            put_code,
            source_client_id: source.map(str::to_owned),
            content_hash: hash.to_owned(),
            title: Some(format!("item {put_code}")),
        }
    }

    #[test]
    fn first_snapshot_lists_every_item_as_added() {
        let now = vec![
            item(Section::Work, 7, None, "a"),
            item(Section::Employment, 9, Some(OURS), "b"),
        ];
        let d = diff(None, &now);
        assert_eq!(
            d.added.iter().map(|i| i.put_code).collect::<Vec<_>>(),
            [9, 7],
            "sorted by section then put code"
        );
        assert!(d.changed.is_empty() && d.removed.is_empty());
        assert_eq!(d.changed_sections(), [Section::Employment, Section::Work]);
    }

    #[test]
    fn same_items_make_an_empty_diff() {
        let now = vec![item(Section::Work, 7, None, "a")];
        let d = diff(Some(&now), &now);
        assert!(d.is_empty());
        assert!(d.changed_sections().is_empty());
        assert!(d.deleted_items(OURS).is_empty());
    }

    #[test]
    fn added_changed_and_removed_by_section_and_put_code() {
        let before = vec![
            item(Section::Work, 1, None, "w1"),
            item(Section::Employment, 2, Some(OURS), "e2"),
            item(Section::Funding, 3, Some("APP-OTHER00000000001"), "f3"),
            item(Section::Work, 4, Some(OURS), "w4"),
        ];
        let now = vec![
            item(Section::Work, 1, None, "w1"),
            item(Section::Employment, 2, Some(OURS), "e2-edited"),
            item(Section::Work, 5, None, "w5"),
        ];
        let d = diff(Some(&before), &now);
        assert_eq!(d.added, [item(Section::Work, 5, None, "w5")]);
        assert_eq!(
            d.changed,
            [item(Section::Employment, 2, Some(OURS), "e2-edited")]
        );
        assert_eq!(
            d.removed.iter().map(|i| i.put_code).collect::<Vec<_>>(),
            [4, 3],
            "work before funding"
        );
        assert_eq!(
            d.changed_sections(),
            [Section::Employment, Section::Work, Section::Funding]
        );
        assert_eq!(
            d.deleted_items(OURS),
            [DeletedItem {
                section: Section::Work,
                put_code: 4,
                source_id: None
            }],
            "only our own removed item, not another client's"
        );
    }

    #[test]
    fn the_same_put_code_in_two_sections_is_two_items() {
        let before = vec![item(Section::Employment, 5, None, "x")];
        let now = vec![item(Section::Service, 5, None, "x")];
        let d = diff(Some(&before), &now);
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.removed.len(), 1);
        assert!(d.changed.is_empty());
    }
}
