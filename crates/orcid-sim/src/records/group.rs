//! Grouping of listings (reference §3.6): items that share a groupable external id — equal type
//! and equal normalised value, relationship and URL ignored — fall in one group, transitively;
//! an item without groupable ids is a group of its own.
//!
//! Groups are formed from the items the caller may see (so a hidden item never joins two
//! visible ones), ordered by their lowest put code, items within a group by put code.

use std::collections::HashMap;
use std::sync::Arc;

use super::model::{IdKey, Item};

/// Splits `items` (in put-code order) into groups.
pub fn groups<'a>(items: &[&'a Arc<Item>]) -> Vec<Vec<&'a Arc<Item>>> {
    let mut parent: Vec<usize> = (0..items.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_holder: HashMap<&IdKey, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        for key in &item.group_keys {
            match first_holder.get(key) {
                Some(&other) => {
                    let (a, b) = (root(&mut parent, index), root(&mut parent, other));
                    if a != b {
                        // Keep the earlier item as root so group order follows put codes.
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    first_holder.insert(key, index);
                }
            }
        }
    }
    let mut order: Vec<usize> = Vec::new();
    let mut members: HashMap<usize, Vec<&'a Arc<Item>>> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let r = root(&mut parent, index);
        members
            .entry(r)
            .or_insert_with(|| {
                order.push(r);
                Vec::new()
            })
            .push(item);
    }
    order
        .into_iter()
        .filter_map(|r| members.remove(&r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::model::{Section, Source, Visibility};
    use serde_json::Map;

    fn item(put_code: u64, keys: &[&str]) -> Arc<Item> {
        Arc::new(Item {
            put_code,
            section: Section::Work,
            source: Source::User,
            visibility: Visibility::Public,
            created_ms: 0,
            last_modified_ms: 0,
            content: Map::new(),
            duplicate_keys: Vec::new(),
            group_keys: keys
                .iter()
                .map(|k| IdKey {
                    id_type: "doi".into(),
                    value: (*k).into(),
                })
                .collect(),
        })
    }

    #[test]
    fn transitive_groups_in_put_code_order() {
        let items = [
            item(1, &["a"]),
            item(2, &[]),
            item(3, &["b"]),
            item(4, &["a", "b"]),
            item(5, &["c"]),
        ];
        let refs: Vec<&Arc<Item>> = items.iter().collect();
        let grouped: Vec<Vec<u64>> = groups(&refs)
            .into_iter()
            .map(|g| g.into_iter().map(|i| i.put_code).collect())
            .collect();
        assert_eq!(grouped, vec![vec![1, 3, 4], vec![2], vec![5]]);
    }
}
