//! The building blocks of the registry: a latency histogram of atomics, a float counter kept as
//! millionths in an atomic, and a small map from a label set to its series.
//!
//! A request finds its series once (a read lock on the map, a write lock only the first time a
//! label set is seen) and then counts with atomics only, so no lock is held while anyone counts.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets in seconds: from a cached short answer (50 ms) to a long
/// agent turn (two minutes). `+Inf` is implied.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0, 90.0, 120.0,
];

/// A histogram of durations with [`LATENCY_BUCKETS`]. Buckets are stored non-cumulative and
/// summed when rendered, so an observation touches three atomics.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    /// Observations above the last bucket (only in `+Inf`).
    over: AtomicU64,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Count one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        match LATENCY_BUCKETS.iter().position(|le| secs <= *le) {
            Some(i) => {
                if let Some(b) = self.buckets.get(i) {
                    b.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.over.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            d.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    /// Cumulative counts per bucket (as Prometheus wants them), then the total count and the sum
    /// in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut running = 0;
        let cumulative = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(le, b)| {
                running += b.load(Ordering::Relaxed);
                (*le, running)
            })
            .collect();
        let count = running + self.over.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (cumulative, count, sum)
    }
}

/// A counter of a fractional quantity (Kiro credits), kept as millionths so that it stays an
/// atomic.
#[derive(Default)]
pub struct FloatCounter(AtomicU64);

impl FloatCounter {
    pub fn add(&self, v: f64) {
        if v.is_finite() && v > 0.0 {
            self.0
                .fetch_add((v * 1e6).round() as u64, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// Label sets seen so far and their series. The number of label sets is capped: past the cap,
/// new label sets share the series of `overflow` (e.g. the model `other`), so a client sending
/// ever new model names cannot grow the gateway's memory.
pub struct SeriesMap<K, V> {
    map: RwLock<HashMap<K, Arc<V>>>,
    cap: usize,
}

impl<K: Hash + Eq + Clone + Ord, V: Default> SeriesMap<K, V> {
    pub fn new(cap: usize) -> SeriesMap<K, V> {
        SeriesMap {
            map: RwLock::new(HashMap::new()),
            cap,
        }
    }

    /// The series of `key`, created on first use; past the cap, the series of `overflow(key)`.
    pub fn get(&self, key: &K, overflow: impl FnOnce(&K) -> K) -> Arc<V> {
        if let Some(v) = self.read().get(key) {
            return v.clone();
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = map.get(key) {
            return v.clone();
        }
        let key = if map.len() >= self.cap {
            overflow(key)
        } else {
            key.clone()
        };
        map.entry(key).or_default().clone()
    }

    /// Every series, sorted by label set (so the exposition is stable from scrape to scrape).
    pub fn sorted(&self) -> Vec<(K, Arc<V>)> {
        let mut all: Vec<(K, Arc<V>)> = self
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<K, Arc<V>>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_everything() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(700));
        h.observe(Duration::from_secs(500));
        let (buckets, count, sum) = h.snapshot();
        assert_eq!(buckets.first(), Some(&(0.05, 2)));
        assert_eq!(buckets.iter().find(|b| b.0 == 1.0), Some(&(1.0, 3)));
        assert_eq!(buckets.last(), Some(&(120.0, 3)));
        assert_eq!(count, 4);
        assert!((sum - 500.76).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn float_counter_keeps_fractions_and_ignores_nonsense() {
        let c = FloatCounter::default();
        c.add(0.25);
        c.add(1.5);
        c.add(f64::NAN);
        c.add(-3.0);
        assert!((c.get() - 1.75).abs() < 1e-9);
    }

    #[test]
    fn series_map_folds_label_sets_past_the_cap() {
        let m: SeriesMap<String, AtomicU64> = SeriesMap::new(2);
        let other = |_: &String| "other".to_string();
        m.get(&"a".into(), other).fetch_add(1, Ordering::Relaxed);
        m.get(&"b".into(), other).fetch_add(1, Ordering::Relaxed);
        m.get(&"c".into(), other).fetch_add(1, Ordering::Relaxed);
        m.get(&"d".into(), other).fetch_add(1, Ordering::Relaxed);
        m.get(&"a".into(), other).fetch_add(1, Ordering::Relaxed);
        let seen: Vec<(String, u64)> = m
            .sorted()
            .into_iter()
            .map(|(k, v)| (k, v.load(Ordering::Relaxed)))
            .collect();
        assert_eq!(
            seen,
            vec![("a".into(), 2), ("b".into(), 1), ("other".into(), 2)]
        );
    }
}
