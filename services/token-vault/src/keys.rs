//! The key ring the running vault uses, replaceable while it serves (online rotation: load a
//! ring with the new key active, then [`crate::rotate`] re-wraps the rows).

use std::sync::{Arc, RwLock};

use idbridge_crypto::KeyRing;

/// A shared, replaceable [`KeyRing`]. Clones share the ring.
#[derive(Clone, Debug)]
pub struct KeyRingHandle(Arc<RwLock<Arc<KeyRing>>>);

impl KeyRingHandle {
    /// Starts with `ring`.
    pub fn new(ring: KeyRing) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(ring))))
    }

    /// The ring now in use (operations keep the one they started with).
    pub fn current(&self) -> Arc<KeyRing> {
        // A poisoned lock only means a writer panicked between two statements of `replace`;
        // the ring inside is whole either way.
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Makes `ring` the one new operations use: after adding a key and making it active, and
    /// before running [`crate::rotate`].
    pub fn replace(&self, ring: KeyRing) {
        tracing::info!(active_key = %ring.active_key_id(), "key ring replaced");
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(ring);
    }
}
