//! The bounded in-memory store behind `previous_response_id`: each answered response keeps the
//! conversation it continued, its new input and the assistant's output, so that a follow-up that
//! names it and sends only new input is answered with the whole history.
//!
//! Bounded three ways: at most `RESPONSES_STORE_SIZE` entries and `RESPONSES_STORE_MB` of
//! histories (the least recently used go first), and at most `RESPONSES_STORE_TTL` of age (an
//! expired entry is never returned). Histories are chains of shared nodes, so a long conversation
//! costs its messages once, not once per turn; the size bound counts each entry's whole history,
//! shared parts included, so what it allows is an upper bound of what is held.
//! Nothing is written to disk, and nothing here knows HTTP or JSON.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conversation::{Image, Message};

/// One stored response: what it added to the conversation, and the conversation before it.
#[derive(Debug)]
pub struct Turn {
    parent: Option<Arc<Turn>>,
    /// System text that came from input items (system/developer messages). `instructions` are
    /// not kept: OpenAI does not carry them over to follow-ups.
    system: Vec<String>,
    /// The input messages of this response, then the assistant's output.
    messages: Vec<Message>,
    /// About how many bytes the whole history up to this turn holds.
    bytes: usize,
}

impl Turn {
    /// A turn continuing `parent` (None for the first response of a conversation).
    pub fn new(parent: Option<Arc<Turn>>, system: Vec<String>, messages: Vec<Message>) -> Turn {
        let own = system.iter().map(String::len).sum::<usize>()
            + messages.iter().map(message_bytes).sum::<usize>();
        Turn {
            bytes: own.saturating_add(parent.as_ref().map_or(0, |p| p.bytes)),
            parent,
            system,
            messages,
        }
    }

    /// The chain from the first response to this one.
    fn chain(&self) -> Vec<&Turn> {
        let mut chain = vec![self];
        let mut at = self.parent.as_deref();
        while let Some(t) = at {
            chain.push(t);
            at = t.parent.as_deref();
        }
        chain.reverse();
        chain
    }

    /// Every system text of the conversation so far, oldest first.
    pub fn system(&self) -> Vec<String> {
        self.chain()
            .into_iter()
            .flat_map(|t| t.system.iter().cloned())
            .collect()
    }

    /// Every message of the conversation so far, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.chain()
            .into_iter()
            .flat_map(|t| t.messages.iter().cloned())
            .collect()
    }
}

/// About how many bytes `m` holds: its strings, images and tool arguments.
fn message_bytes(m: &Message) -> usize {
    let images = |i: &[Image]| {
        i.iter()
            .map(|i| i.data.len() + i.format.len())
            .sum::<usize>()
    };
    let calls = m
        .tool_calls
        .iter()
        .map(|c| c.id.len() + c.name.len() + value_bytes(&c.input));
    let results = m
        .tool_results
        .iter()
        .map(|r| r.tool_use_id.len() + r.text.len() + images(&r.images));
    let reasoning = m.reasoning.as_ref().map_or(0, |r| {
        r.text.len()
            + r.signature.as_ref().map_or(0, String::len)
            + r.redacted.as_ref().map_or(0, String::len)
    });
    m.text.len() + images(&m.images) + calls.sum::<usize>() + results.sum::<usize>() + reasoning
}

/// The length of `v` written as JSON (its depth is bounded by the parser that built it).
fn value_bytes(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

impl Drop for Turn {
    // The default drop of a long chain recurses once per turn and can overflow a worker's stack;
    // unlink the chain iteratively instead (stopping where another response still shares it).
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(arc) = next {
            match Arc::try_unwrap(arc) {
                Ok(mut t) => next = t.parent.take(),
                Err(_) => break,
            }
        }
    }
}

struct Entry {
    turn: Arc<Turn>,
    created: Instant,
    /// Key in `Inner::recency`.
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Use counter → id, least recently used first.
    recency: BTreeMap<u64, String>,
    clock: u64,
    /// The sum of the entries' history sizes.
    bytes: usize,
}

impl Inner {
    /// Take entry `id` out, with its place in the recency order and its size.
    fn remove(&mut self, id: &str) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        self.recency.remove(&e.used);
        self.bytes = self.bytes.saturating_sub(e.turn.bytes);
        Some(e)
    }
}

/// Responses kept for `previous_response_id`, shared by all workers.
pub struct ResponseStore {
    inner: Mutex<Inner>,
    capacity: usize,
    max_bytes: usize,
    ttl: Duration,
}

impl ResponseStore {
    /// A store of at most `capacity` responses holding at most `max_bytes` of history, each
    /// kept at most `ttl`. A capacity of 0 keeps nothing (every follow-up is then answered "not
    /// found"); so does a response whose history alone is over `max_bytes`.
    pub fn new(capacity: usize, max_bytes: usize, ttl: Duration) -> ResponseStore {
        ResponseStore {
            inner: Mutex::new(Inner::default()),
            capacity,
            max_bytes,
            ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a consistent map (every change below
        // is completed before anything can panic), so the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The history ending with response `id`, if it is known and not expired. Counts as a use.
    pub fn get(&self, id: &str) -> Option<Arc<Turn>> {
        self.get_at(id, Instant::now())
    }

    /// Keep response `id`, evicting the least recently used entries beyond the capacity.
    pub fn put(&self, id: String, turn: Turn) {
        self.put_at(id, turn, Instant::now());
    }

    /// How many responses are kept (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_at(&self, id: &str, now: Instant) -> Option<Arc<Turn>> {
        let mut g = self.lock();
        let inner = &mut *g;
        let expired = now.saturating_duration_since(inner.entries.get(id)?.created) > self.ttl;
        if expired {
            let gone = inner.remove(id);
            drop(g);
            drop(gone);
            return None;
        }
        inner.clock += 1;
        let clock = inner.clock;
        let e = inner.entries.get_mut(id)?;
        inner.recency.remove(&e.used);
        e.used = clock;
        inner.recency.insert(clock, id.to_string());
        Some(e.turn.clone())
    }

    fn put_at(&self, id: String, turn: Turn, now: Instant) {
        if self.capacity == 0 || turn.bytes > self.max_bytes {
            return;
        }
        let evicted: Vec<Entry>;
        {
            let mut g = self.lock();
            let inner = &mut *g;
            let ttl = self.ttl;
            let mut gone: Vec<Entry> = Vec::new();
            // Sweep expired entries so that memory is given back even when nobody asks for them.
            let stale: Vec<String> = inner
                .entries
                .iter()
                .filter(|(_, e)| now.saturating_duration_since(e.created) > ttl)
                .map(|(k, _)| k.clone())
                .collect();
            gone.extend(stale.iter().filter_map(|k| inner.remove(k)));
            gone.extend(inner.remove(&id));
            while inner.entries.len() >= self.capacity
                || inner.bytes.saturating_add(turn.bytes) > self.max_bytes
            {
                let Some((_, oldest)) = inner.recency.pop_first() else {
                    break;
                };
                gone.extend(inner.remove(&oldest));
            }
            inner.clock += 1;
            let used = inner.clock;
            inner.recency.insert(used, id.clone());
            inner.bytes = inner.bytes.saturating_add(turn.bytes);
            inner.entries.insert(
                id,
                Entry {
                    turn: Arc::new(turn),
                    created: now,
                    used,
                },
            );
            evicted = gone;
        }
        // Freeing long histories happens after the lock is released.
        drop(evicted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Role;

    fn turn(parent: Option<Arc<Turn>>, text: &str) -> Turn {
        Turn::new(
            parent,
            vec![format!("sys {text}")],
            vec![
                Message::text(Role::User, format!("q {text}")),
                Message::text(Role::Assistant, format!("a {text}")),
            ],
        )
    }

    #[test]
    fn follow_up_history_is_the_whole_chain_in_order() {
        let s = ResponseStore::new(10, usize::MAX, Duration::from_secs(60));
        s.put("r1".into(), turn(None, "1"));
        let h1 = s.get("r1").unwrap();
        s.put("r2".into(), turn(Some(h1), "2"));
        let h2 = s.get("r2").unwrap();
        let texts: Vec<String> = h2.messages().into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["q 1", "a 1", "q 2", "a 2"]);
        assert_eq!(h2.system(), ["sys 1", "sys 2"]);
    }

    #[test]
    fn unknown_id_is_not_found() {
        let s = ResponseStore::new(10, usize::MAX, Duration::from_secs(60));
        s.put("r1".into(), turn(None, "1"));
        assert!(s.get("resp_nope").is_none());
        assert!(s.get("").is_none());
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let s = ResponseStore::new(2, usize::MAX, Duration::from_secs(60));
        s.put("a".into(), turn(None, "a"));
        s.put("b".into(), turn(None, "b"));
        // Using "a" makes "b" the least recently used.
        assert!(s.get("a").is_some());
        s.put("c".into(), turn(None, "c"));
        assert_eq!(s.len(), 2);
        assert!(s.get("b").is_none());
        assert!(s.get("a").is_some());
        assert!(s.get("c").is_some());
    }

    #[test]
    fn evicted_parent_still_serves_its_children() {
        let s = ResponseStore::new(1, usize::MAX, Duration::from_secs(60));
        s.put("a".into(), turn(None, "a"));
        let a = s.get("a").unwrap();
        s.put("b".into(), turn(Some(a), "b"));
        assert!(s.get("a").is_none());
        assert_eq!(s.get("b").unwrap().messages().len(), 4);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let s = ResponseStore::new(10, usize::MAX, Duration::from_secs(60));
        let t0 = Instant::now();
        s.put_at("a".into(), turn(None, "a"), t0);
        assert!(s.get_at("a", t0 + Duration::from_secs(59)).is_some());
        assert!(s.get_at("a", t0 + Duration::from_secs(61)).is_none());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn put_sweeps_expired_entries() {
        let s = ResponseStore::new(10, usize::MAX, Duration::from_secs(60));
        let t0 = Instant::now();
        s.put_at("a".into(), turn(None, "a"), t0);
        s.put_at("b".into(), turn(None, "b"), t0 + Duration::from_secs(30));
        s.put_at("c".into(), turn(None, "c"), t0 + Duration::from_secs(70));
        assert_eq!(s.len(), 2);
        assert!(s.get_at("b", t0 + Duration::from_secs(70)).is_some());
    }

    #[test]
    fn the_size_bound_evicts_the_least_recently_used_histories() {
        // turn(_, 30 characters) holds 98 bytes: "sys ", "q " and "a " and the text thrice.
        let s = ResponseStore::new(10, 300, Duration::from_secs(60));
        let a = turn(None, &"a".repeat(30));
        assert_eq!(a.bytes, 98);
        let a = Arc::new(a);
        s.put("a".into(), turn(None, &"a".repeat(30)));
        s.put("b".into(), turn(None, &"b".repeat(30)));
        assert!(s.get("a").is_some(), "a is now the more recently used");
        // c's history counts a's turn too (196): 98 + 98 + 196 > 300, so b goes and a stays.
        s.put("c".into(), turn(Some(a), &"c".repeat(30)));
        assert!(s.get("b").is_none());
        assert!(s.get("a").is_some());
        assert_eq!(s.get("c").map(|t| t.messages().len()), Some(4));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_history_over_the_size_bound_is_not_kept() {
        let s = ResponseStore::new(10, 300, Duration::from_secs(60));
        s.put("small".into(), turn(None, "hi"));
        s.put("big".into(), turn(None, &"x".repeat(101)));
        assert!(s.get("big").is_none());
        assert!(s.get("small").is_some(), "nothing else was evicted for it");
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let s = ResponseStore::new(0, usize::MAX, Duration::from_secs(60));
        s.put("a".into(), turn(None, "a"));
        assert!(s.is_empty());
        assert!(s.get("a").is_none());
    }

    #[test]
    fn very_long_chain_drops_without_overflowing_the_stack() {
        let s = ResponseStore::new(2, usize::MAX, Duration::from_secs(60));
        let mut parent: Option<Arc<Turn>> = None;
        for _ in 0..100_000 {
            parent = Some(Arc::new(Turn::new(parent.take(), Vec::new(), Vec::new())));
        }
        s.put("long".into(), turn(parent, "end"));
        assert_eq!(s.get("long").unwrap().messages().len(), 2);
        s.put("x".into(), turn(None, "x"));
        s.put("y".into(), turn(None, "y"));
        assert!(s.get("long").is_none());
    }
}
