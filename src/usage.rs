//! Usage per client key and UTC day — requests, tokens in and out, Kiro credits — kept across
//! restarts in a small SQLite file (`usage.sqlite` in the state directory), and the totals the
//! credit budgets are checked against.
//!
//! The request path only adds to in-memory totals (one short lock, after the answer was sent);
//! a flusher thread writes what changed every few seconds in one transaction, and once more when
//! the gateway stops. A database that cannot be opened or written costs the persistence, never a
//! request: the totals in memory keep counting and the error is logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::util::{format_iso8601, IsoStyle};

const MS_PER_DAY: u64 = 86_400_000;

/// One key's use on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DayTotals {
    pub requests: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub credits: f64,
}

impl DayTotals {
    fn add(&mut self, o: &DayTotals) {
        self.requests += o.requests;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.credits += o.credits;
    }
}

/// (client key name, UTC date `YYYY-MM-DD`).
type Slot = (String, String);

#[derive(Default)]
struct State {
    /// This month's totals (older months are dropped as the month turns).
    totals: HashMap<Slot, DayTotals>,
    /// Added since the last flush.
    pending: HashMap<Slot, DayTotals>,
    /// The month `totals` holds (`YYYY-MM`).
    month: String,
}

/// The usage store.
pub struct Usage {
    state: Mutex<State>,
    db: Mutex<Option<Connection>>,
    path: Option<PathBuf>,
}

/// The UTC date of Unix milliseconds, `YYYY-MM-DD`.
pub fn utc_date(unix_ms: u64) -> String {
    let day_start = (unix_ms / MS_PER_DAY * MS_PER_DAY) as i64;
    format_iso8601(day_start, IsoStyle::SecondsZ)
        .get(..10)
        .unwrap_or("1970-01-01")
        .to_string()
}

impl Usage {
    /// Usage kept in memory only.
    pub fn in_memory() -> Usage {
        Usage {
            state: Mutex::new(State::default()),
            db: Mutex::new(None),
            path: None,
        }
    }

    /// Open (or create) the database at `path` and load this month's totals. A database that
    /// cannot be opened is logged and usage is kept in memory only.
    pub fn open(path: &Path, now_ms: u64) -> Usage {
        let usage = Usage {
            path: Some(path.to_path_buf()),
            ..Usage::in_memory()
        };
        match open_db(path, &utc_date(now_ms)) {
            Ok((conn, rows)) => {
                let mut st = usage.lock();
                st.totals = rows;
                drop(st);
                *usage.db.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
            }
            Err(e) => log::error!(
                "usage database {}: {e}; usage per key is kept in memory only until restart",
                path.display()
            ),
        }
        usage
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count one request of `key` that arrived at `unix_ms`.
    pub fn record(&self, key: &str, unix_ms: u64, add: &DayTotals) {
        let date = utc_date(unix_ms);
        let slot = (key.to_string(), date);
        let mut st = self.lock();
        let month = slot.1.get(..7).unwrap_or("");
        if st.month != month {
            st.totals.retain(|(_, d), _| d.starts_with(month));
            st.month = month.to_string();
        }
        st.totals.entry(slot.clone()).or_default().add(add);
        st.pending.entry(slot).or_default().add(add);
    }

    /// Credits `key` spent on the UTC day of `now_ms` and in its month.
    pub fn credits(&self, key: &str, now_ms: u64) -> (f64, f64) {
        let date = utc_date(now_ms);
        let month = date.get(..7).unwrap_or("");
        let st = self.lock();
        let mut today = 0.0;
        let mut this_month = 0.0;
        for ((k, d), t) in &st.totals {
            if k == key && d.starts_with(month) {
                this_month += t.credits;
                if *d == date {
                    today += t.credits;
                }
            }
        }
        (today, this_month)
    }

    /// Every key's use on the UTC day of `now_ms`, by key name.
    pub fn today(&self, now_ms: u64) -> Vec<(String, DayTotals)> {
        let date = utc_date(now_ms);
        let st = self.lock();
        let mut list: Vec<(String, DayTotals)> = st
            .totals
            .iter()
            .filter(|((_, d), _)| *d == date)
            .map(|((k, _), t)| (k.clone(), *t))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// Write what was added since the last flush, in one transaction. On failure the additions
    /// are kept for the next flush.
    pub fn flush(&self) {
        let pending = std::mem::take(&mut self.lock().pending);
        if pending.is_empty() {
            return;
        }
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let Some(conn) = db.as_mut() else {
            return;
        };
        if let Err(e) = write(conn, &pending) {
            log::error!(
                "could not write usage to {}: {e}; will try again",
                self.path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
            let mut st = self.lock();
            for (slot, t) in pending {
                st.pending.entry(slot).or_default().add(&t);
            }
        }
    }

    /// Flush every `every` on a thread of its own.
    pub fn start_flusher(self: &Arc<Self>, every: Duration) {
        let usage = self.clone();
        let spawned = std::thread::Builder::new()
            .name("usage-flush".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                usage.flush();
            });
        if let Err(e) = spawned {
            log::error!("cannot start the usage flusher: {e}; usage is not saved");
        }
    }
}

fn open_db(path: &Path, today: &str) -> rusqlite::Result<(Connection, HashMap<Slot, DayTotals>)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS usage (
            key TEXT NOT NULL,
            day TEXT NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            credits REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (key, day)
        );",
    )?;
    let month = format!("{}%", today.get(..7).unwrap_or(""));
    let mut rows = HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT key, day, requests, tokens_in, tokens_out, credits FROM usage WHERE day LIKE ?1",
        )?;
        let mut q = stmt.query([month])?;
        while let Some(r) = q.next()? {
            let t = DayTotals {
                requests: r.get::<_, i64>(2)?.max(0) as u64,
                tokens_in: r.get::<_, i64>(3)?.max(0) as u64,
                tokens_out: r.get::<_, i64>(4)?.max(0) as u64,
                credits: r.get(5)?,
            };
            rows.insert((r.get(0)?, r.get(1)?), t);
        }
    }
    Ok((conn, rows))
}

fn write(conn: &mut Connection, pending: &HashMap<Slot, DayTotals>) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO usage (key, day, requests, tokens_in, tokens_out, credits)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(key, day) DO UPDATE SET
               requests = requests + excluded.requests,
               tokens_in = tokens_in + excluded.tokens_in,
               tokens_out = tokens_out + excluded.tokens_out,
               credits = credits + excluded.credits",
        )?;
        for ((key, day), t) in pending {
            stmt.execute(rusqlite::params![
                key,
                day,
                t.requests as i64,
                t.tokens_in as i64,
                t.tokens_out as i64,
                t.credits
            ])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = MS_PER_DAY;
    // 2026-12-04T12:00:00Z
    const NOW: u64 = 1_796_385_600_000;

    fn one(credits: f64) -> DayTotals {
        DayTotals {
            requests: 1,
            tokens_in: 10,
            tokens_out: 5,
            credits,
        }
    }

    fn temp_db(tag: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!(
                "kgw-usage-{tag}-{}-{}",
                std::process::id(),
                crate::util::now_unix_millis()
            ))
            .join("usage.sqlite")
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(utc_date(NOW), "2026-12-04");
        assert_eq!(utc_date(NOW + 12 * 3600 * 1000 - 1), "2026-12-04");
        assert_eq!(utc_date(NOW + 12 * 3600 * 1000), "2026-12-05");
    }

    #[test]
    fn credits_add_up_per_day_and_month() {
        let u = Usage::in_memory();
        u.record("alice", NOW - DAY, &one(2.0));
        u.record("alice", NOW, &one(0.5));
        u.record("alice", NOW, &one(0.25));
        u.record("bob", NOW, &one(9.0));
        assert_eq!(u.credits("alice", NOW), (0.75, 2.75));
        assert_eq!(u.credits("carol", NOW), (0.0, 0.0));
        let today = u.today(NOW);
        assert_eq!(today.len(), 2);
        assert_eq!(today[0].0, "alice");
        assert_eq!(today[0].1.requests, 2);
        // The month turns: November is forgotten.
        u.record("alice", NOW + 28 * DAY, &one(1.0));
        assert_eq!(u.credits("alice", NOW + 28 * DAY), (1.0, 1.0));
    }

    #[test]
    fn usage_survives_a_restart() {
        let path = temp_db("restart");
        let u = Usage::open(&path, NOW);
        u.record("alice", NOW, &one(0.5));
        u.record("alice", NOW, &one(0.5));
        u.flush();
        u.record("alice", NOW, &one(1.0));
        u.flush();
        drop(u);
        let again = Usage::open(&path, NOW);
        assert_eq!(again.credits("alice", NOW), (2.0, 2.0));
        assert_eq!(again.today(NOW)[0].1.requests, 3);
        assert_eq!(again.today(NOW)[0].1.tokens_out, 15);
        // Another month's gateway starts from zero but keeps the rows.
        let later = Usage::open(&path, NOW + 40 * DAY);
        assert_eq!(later.credits("alice", NOW + 40 * DAY), (0.0, 0.0));
    }

    #[test]
    fn an_unwritable_database_keeps_counting_in_memory() {
        let dir = temp_db("blocked");
        // A directory where the file should be: SQLite cannot open it.
        std::fs::create_dir_all(&dir).unwrap();
        let u = Usage::open(&dir, NOW);
        u.record("alice", NOW, &one(1.0));
        u.flush();
        assert_eq!(u.credits("alice", NOW), (1.0, 1.0));
    }
}
