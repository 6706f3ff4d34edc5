//! Bounded caches of work done on public keys: a checked, decompressed
//! Ed25519 key, and the libp2p peer id of a key.
//!
//! Decompressing a point takes a square root and checking its encoding an
//! inversion, about 5 µs each; a chat node verifies every entry of a
//! handful of authors, so without a cache it would repeat that work for
//! the same few keys thousands of times a second. The cached values are
//! pure functions of the 32 key bytes, so a cache hit answers exactly what
//! the computation would (keys that fail the checks are never cached).
//! Each cache holds at most [`CAPACITY`] keys and starts over when full.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

/// Most keys per cache.
pub(crate) const CAPACITY: usize = 4_096;

/// A process-wide map from key bytes to a value derived from them.
pub(crate) struct KeyCache<V: Copy> {
    map: LazyLock<Mutex<HashMap<[u8; 32], V>>>,
}

impl<V: Copy> KeyCache<V> {
    pub(crate) const fn new() -> Self {
        Self {
            map: LazyLock::new(|| Mutex::new(HashMap::new())),
        }
    }

    /// The cached value for `key`, or `compute`'s (cached when `Ok`).
    pub(crate) fn get_or_try<E>(
        &self,
        key: &[u8; 32],
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(value) = self.lock().get(key) {
            return Ok(*value);
        }
        // Computed outside the lock: other threads keep their hits.
        let value = compute()?;
        let mut map = self.lock();
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(*key, value);
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], V>> {
        // The map holds no invariant a panic could break.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::{CAPACITY, KeyCache};

    #[test]
    fn hits_skip_the_computation_and_failures_are_not_kept() {
        let cache: KeyCache<u64> = KeyCache::new();
        assert_eq!(
            cache.get_or_try(&[1; 32], || Err::<u64, &str>("bad")),
            Err("bad")
        );
        assert_eq!(cache.len(), 0);
        let mut computed = 0;
        for _ in 0..3 {
            let value = cache.get_or_try(&[2; 32], || {
                computed += 1;
                Ok::<u64, ()>(7)
            });
            assert_eq!(value, Ok(7));
        }
        assert_eq!(computed, 1);
        // A failure for a key is computed again every time.
        assert_eq!(
            cache.get_or_try(&[1; 32], || Err::<u64, &str>("bad")),
            Err("bad")
        );
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache: KeyCache<usize> = KeyCache::new();
        for i in 0..CAPACITY * 2 + 5 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&i.to_le_bytes());
            assert_eq!(cache.get_or_try(&key, || Ok::<_, ()>(i)), Ok(i));
            assert!(cache.len() <= CAPACITY);
        }
    }
}
