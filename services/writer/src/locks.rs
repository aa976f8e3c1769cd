//! One write at a time per person inside this process.
//!
//! Across replicas the bus's partitions give the same guarantee (one message in flight per
//! person id); this lock covers callers that bypass the bus (tests, the HTTPS intake later)
//! and the moment a partition moves between replicas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::OwnedMutexGuard;

/// Async locks by person id, forgotten when nobody holds them.
#[derive(Debug, Default)]
pub(crate) struct PersonLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl PersonLocks {
    /// Waits for, then holds, the lock of `person_id` until the guard is dropped.
    pub(crate) async fn lock(&self, person_id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            match locks.get(person_id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    locks.retain(|_, weak| weak.strong_count() > 0);
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(person_id.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}
