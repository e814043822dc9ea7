//! Which account served each conversation, so its follow-ups go back there while that account is
//! usable: whatever Kiro keeps per conversation (its cache, its conversation id) stays warm.
//!
//! Bounded: past the cap the conversations not served for the longest are forgotten first, one at
//! a time (a forgotten conversation just picks an account afresh).

use std::collections::{HashMap, VecDeque};

/// Conversations remembered.
pub const AFFINITY_CAP: usize = 10_000;

/// Conversation key → account index, least recently served first out.
#[derive(Debug)]
pub struct Affinity {
    cap: usize,
    /// Key → (account, the stamp of its latest use).
    map: HashMap<String, (usize, u64)>,
    /// Uses in order; an entry whose stamp is not the key's latest is stale and skipped.
    order: VecDeque<(String, u64)>,
    stamp: u64,
}

impl Affinity {
    pub fn new(cap: usize) -> Affinity {
        Affinity {
            cap: cap.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
            stamp: 0,
        }
    }

    /// The account that served `key` last, if remembered.
    pub fn get(&self, key: &str) -> Option<usize> {
        self.map.get(key).map(|(account, _)| *account)
    }

    /// `account` served `key`.
    pub fn record(&mut self, key: &str, account: usize) {
        self.stamp += 1;
        self.map.insert(key.to_string(), (account, self.stamp));
        self.order.push_back((key.to_string(), self.stamp));
        while self.map.len() > self.cap {
            let Some((old, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(_, s)| *s == stamp) {
                self.map.remove(&old);
            }
        }
        // Follow-ups leave stale entries behind; drop them before the queue outgrows the map.
        if self.order.len() > 2 * self.cap {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|(_, latest)| latest == s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_keep_their_account_and_the_least_recently_served_goes_first() {
        let mut a = Affinity::new(2);
        a.record("one", 0);
        a.record("two", 1);
        assert_eq!(a.get("one"), Some(0));
        // "one" is served again, so "two" is now the oldest and goes when "three" arrives.
        a.record("one", 1);
        a.record("three", 0);
        assert_eq!(a.map.len(), 2);
        assert_eq!(a.get("one"), Some(1));
        assert_eq!(a.get("two"), None);
        assert_eq!(a.get("three"), Some(0));
    }

    #[test]
    fn the_order_queue_stays_bounded_under_follow_ups() {
        let mut a = Affinity::new(3);
        for i in 0..1000 {
            a.record("same", i % 2);
        }
        assert_eq!(a.map.len(), 1);
        assert!(a.order.len() <= 6, "{}", a.order.len());
        assert_eq!(a.get("same"), Some(1));
    }
}
