//! One bounded cache for everything an isolate remembers (verified tokens, refreshes in
//! flight, signed assertions, imported WebCrypto keys): entries expire at their own time and,
//! when full, the oldest go first. Single-threaded (wasm), so interior mutability suffices.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::base::time::UnixTime;

pub struct BoundedCache<K, V> {
    capacity: usize,
    entries: RefCell<HashMap<K, Entry<V>>>,
    /// Insertion order, for eviction: a key with the insertion it stands for. A queued
    /// insertion that was since removed, expired or replaced is skipped.
    order: RefCell<VecDeque<(K, u64)>>,
    inserted: std::cell::Cell<u64>,
}

struct Entry<V> {
    value: V,
    until: UnixTime,
    insertion: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: RefCell::default(),
            order: RefCell::default(),
            inserted: std::cell::Cell::new(0),
        }
    }

    /// The value, while `now` is before its expiry; an expired entry is dropped.
    pub fn get<Q>(&self, key: &Q, now: UnixTime) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.borrow_mut();
        match entries.get(key) {
            Some(e) if now < e.until => Some(e.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` until `until` (exclusive), evicting the oldest entries beyond capacity.
    pub fn insert(&self, key: K, value: V, until: UnixTime) {
        let insertion = self.inserted.get().wrapping_add(1);
        self.inserted.set(insertion);
        let mut entries = self.entries.borrow_mut();
        let mut order = self.order.borrow_mut();
        entries.insert(
            key.clone(),
            Entry {
                value,
                until,
                insertion,
            },
        );
        order.push_back((key, insertion));
        let current = |entries: &HashMap<K, Entry<V>>, k: &K, n: u64| {
            entries.get(k).is_some_and(|e| e.insertion == n)
        };
        while entries.len() > self.capacity {
            match order.pop_front() {
                Some((old, n)) if current(&entries, &old, n) => {
                    entries.remove(&old);
                }
                Some(_) => {}
                None => break,
            }
        }
        // Insertions since removed or replaced stay queued; keep the queue bounded.
        if order.len() > self.capacity.saturating_mul(2) {
            order.retain(|(k, n)| current(&entries, k, *n));
        }
    }

    #[cfg(test)]
    pub fn remove(&self, key: &K) {
        self.entries.borrow_mut().remove(key);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixTime = UnixTime::from_secs(1000);

    #[test]
    fn entries_live_until_their_expiry() {
        let c = BoundedCache::new(10);
        c.insert("a", 1, T0.plus(100));
        assert_eq!(c.get(&"a", T0.plus(99)), Some(1));
        assert_eq!(c.get(&"a", T0.plus(100)), None, "never past expiry");
        assert_eq!(c.len(), 0, "expired entries are dropped");
        assert_eq!(c.get(&"b", T0), None);
        c.insert("a", 2, UnixTime::NEVER);
        c.remove(&"a");
        assert_eq!(c.get(&"a", T0), None);
    }

    #[test]
    fn capacity_evicts_the_oldest_and_the_queue_stays_bounded() {
        let c = BoundedCache::new(3);
        for k in ["a", "b", "c", "d"] {
            c.insert(k.to_owned(), 0, UnixTime::NEVER);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&"a".to_owned(), T0), None);
        assert_eq!(c.get(&"d".to_owned(), T0), Some(0));
        for i in 0..1000 {
            c.insert(format!("x{i}"), i, UnixTime::NEVER);
        }
        assert_eq!(c.len(), 3);
        assert!(c.order.borrow().len() <= 6);
        // Re-inserting a key replaces its value.
        c.insert("x999".to_owned(), 7, UnixTime::NEVER);
        assert_eq!(c.get(&"x999".to_owned(), T0), Some(7));
    }

    #[test]
    fn a_key_inserted_again_is_not_evicted_for_its_earlier_insertion() {
        let c = BoundedCache::new(2);
        c.insert("a", 1, UnixTime::NEVER);
        c.remove(&"a");
        c.insert("b", 2, UnixTime::NEVER);
        c.insert("a", 3, UnixTime::NEVER);
        c.insert("c", 4, UnixTime::NEVER);
        // "b" is the oldest live entry; the stale first "a" must not take the new one.
        assert_eq!(c.get(&"a", T0), Some(3));
        assert_eq!(c.get(&"b", T0), None);
        assert_eq!(c.get(&"c", T0), Some(4));
    }
}
