//! The pool of worker threads (at most `workers`) and the bounded queue in front of it.
//!
//! A full queue refuses a job at once (the caller answers 503), so the acceptor never blocks. A job
//! that waits `queue_timeout` without a worker is expired (answered 503 by the job itself), and a
//! job whose client has gone while it waited is abandoned instead of served. Workers start when
//! jobs need them and end after a minute without work (down to a few), and run on a small
//! explicit stack: a thread costs the stack it touched, and the pool is sized for hundreds of open
//! streams, which an idle gateway should not pay for.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A job that waited at least this long is checked for a client that has gone before it is
/// served (the check reads the kernel's TCP tables, not worth it for a job taken at once).
const CHECK_GONE_AFTER: Duration = Duration::from_millis(100);

/// Workers kept even when idle, so that a quiet gateway answers without starting a thread.
const MIN_WORKERS: usize = 4;

/// A worker with nothing to do for this long ends (its stack and caches go back to the system).
const IDLE_WORKER_ENDS_AFTER: Duration = Duration::from_secs(60);

/// What the pool runs.
pub trait Job: Send + 'static {
    /// Serve it on a worker.
    fn serve(self);
    /// It waited the queue timeout without a worker: answer that the gateway is busy.
    fn expire(self);
    /// Whether the client that sent it has gone.
    fn client_gone(&self) -> bool;
    /// Its client has gone while it waited: drop it without serving it.
    fn abandon(self);
}

/// The pool's size and limits.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Workers at most.
    pub workers: usize,
    pub queue_size: usize,
    pub queue_timeout: Duration,
    /// Stack of each worker thread, in bytes.
    pub stack_size: usize,
}

/// What the pool is doing now.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub workers: usize,
    pub busy: usize,
    pub queued: usize,
}

/// Workers waiting on one bounded queue.
pub struct Pool<J> {
    shared: Arc<Shared<J>>,
}

struct Shared<J> {
    state: Mutex<State<J>>,
    /// Signalled for the workers when a job is queued.
    job_queued: Condvar,
    /// Signalled for the expiry thread when the queue stops being empty.
    first_queued: Condvar,
    settings: Settings,
    busy: AtomicUsize,
}

struct State<J> {
    queue: VecDeque<Waiting<J>>,
    /// Worker threads running (or starting).
    alive: usize,
    /// Workers waiting for a job.
    idle: usize,
}

struct Waiting<J> {
    since: Instant,
    job: J,
}

impl<J: Job> Pool<J> {
    /// Start the first workers and the thread that expires jobs waiting too long.
    pub fn start(settings: Settings) -> io::Result<Pool<J>> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                alive: 0,
                idle: 0,
            }),
            job_queued: Condvar::new(),
            first_queued: Condvar::new(),
            settings,
            busy: AtomicUsize::new(0),
        });
        for _ in 0..settings.workers.clamp(1, MIN_WORKERS) {
            shared.lock().alive += 1;
            spawn_worker(&shared)?;
        }
        let expiry = shared.clone();
        std::thread::Builder::new()
            .name("queue-expiry".into())
            .stack_size(settings.stack_size)
            .spawn(move || run_expiry(&expiry))?;
        Ok(Pool { shared })
    }

    /// Queue `job`, or give it back when the queue is full. A worker is started when no idle one
    /// is left for it and the pool is not at its size.
    pub fn submit(&self, job: J) -> Result<(), J> {
        let mut state = self.shared.lock();
        if state.queue.len() >= self.shared.settings.queue_size.max(1) {
            return Err(job);
        }
        state.queue.push_back(Waiting {
            since: Instant::now(),
            job,
        });
        if state.queue.len() == 1 {
            self.shared.first_queued.notify_one();
        }
        // Compared with the queue's length, not with zero: an idle worker already woken for an
        // earlier job still counts as idle until it runs.
        let start_one =
            state.idle < state.queue.len() && state.alive < self.shared.settings.workers.max(1);
        if start_one {
            state.alive += 1;
        }
        drop(state);
        self.shared.job_queued.notify_one();
        if start_one {
            if let Err(e) = spawn_worker(&self.shared) {
                // The job waits for a running worker (or its queue timeout).
                log::error!("cannot start a worker thread: {e}");
            }
        }
        Ok(())
    }

    /// Workers, how many are busy, how many jobs wait.
    #[cfg(test)]
    pub fn stats(&self) -> Stats {
        let state = self.shared.lock();
        Stats {
            workers: state.alive,
            busy: self.shared.busy.load(Ordering::Relaxed),
            queued: state.queue.len(),
        }
    }
}

impl<J> Shared<J> {
    fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Start one worker, already counted in `alive`; on failure it is counted out again.
fn spawn_worker<J: Job>(shared: &Arc<Shared<J>>) -> io::Result<()> {
    let mine = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("worker".into())
        .stack_size(shared.settings.stack_size)
        .spawn(move || run_worker(&mine));
    if spawned.is_err() {
        shared.lock().alive -= 1;
    }
    spawned.map(|_| ())
}

fn run_worker<J: Job>(shared: &Shared<J>) {
    crate::sys::mark_trimmable_stack();
    while let Some(next) = next_job(shared) {
        let waited = next.since.elapsed();
        if waited >= shared.settings.queue_timeout {
            next.job.expire();
        } else if waited >= CHECK_GONE_AFTER && next.job.client_gone() {
            next.job.abandon();
        } else {
            shared.busy.fetch_add(1, Ordering::Relaxed);
            next.job.serve();
            shared.busy.fetch_sub(1, Ordering::Relaxed);
            // An idle worker keeps no more stack than waiting for the next job needs.
            crate::sys::release_unused_stack();
        }
    }
}

/// The next job, or `None` when this worker has been idle long enough to end.
fn next_job<J>(shared: &Shared<J>) -> Option<Waiting<J>> {
    let mut state = shared.lock();
    loop {
        if let Some(next) = state.queue.pop_front() {
            return Some(next);
        }
        state.idle += 1;
        let (guard, waited) = shared
            .job_queued
            .wait_timeout(state, IDLE_WORKER_ENDS_AFTER)
            .unwrap_or_else(|p| p.into_inner());
        state = guard;
        state.idle -= 1;
        if waited.timed_out() && state.queue.is_empty() && state.alive > MIN_WORKERS {
            state.alive -= 1;
            return None;
        }
    }
}

/// Expire the jobs at the head of the queue as their wait reaches the queue timeout (the workers
/// may all be busy for minutes).
fn run_expiry<J: Job>(shared: &Shared<J>) {
    let timeout = shared.settings.queue_timeout;
    loop {
        let expired = {
            let mut state = shared.lock();
            loop {
                let due = state.queue.front().map(|w| w.since + timeout);
                match due {
                    None => {
                        state = shared
                            .first_queued
                            .wait(state)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                    Some(due) => {
                        let now = Instant::now();
                        if due <= now {
                            if let Some(w) = state.queue.pop_front() {
                                break w;
                            }
                        } else {
                            state = shared
                                .first_queued
                                .wait_timeout(state, due - now)
                                .map(|(q, _)| q)
                                .unwrap_or_else(|p| p.into_inner().0);
                        }
                    }
                }
            }
        };
        expired.job.expire();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc::{channel, Sender};

    /// A job that reports what became of it; job 0 holds its worker until `release` is set.
    struct TestJob {
        n: u32,
        gone: bool,
        release: Arc<AtomicBool>,
        outcome: Sender<(u32, &'static str)>,
    }

    impl Job for TestJob {
        fn serve(self) {
            while self.n == 0 && !self.release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = self.outcome.send((self.n, "served"));
        }
        fn expire(self) {
            let _ = self.outcome.send((self.n, "expired"));
        }
        fn client_gone(&self) -> bool {
            self.gone
        }
        fn abandon(self) {
            let _ = self.outcome.send((self.n, "abandoned"));
        }
    }

    fn settings(queue_size: usize, queue_timeout: Duration) -> Settings {
        Settings {
            workers: 1,
            queue_size,
            queue_timeout,
            stack_size: 128 * 1024,
        }
    }

    struct Harness {
        pool: Pool<TestJob>,
        release: Arc<AtomicBool>,
        tx: Sender<(u32, &'static str)>,
        rx: std::sync::mpsc::Receiver<(u32, &'static str)>,
    }

    impl Harness {
        fn new(s: Settings) -> Harness {
            let (tx, rx) = channel();
            Harness {
                pool: Pool::start(s).unwrap(),
                release: Arc::new(AtomicBool::new(false)),
                tx,
                rx,
            }
        }
        fn job(&self, n: u32, gone: bool) -> TestJob {
            TestJob {
                n,
                gone,
                release: self.release.clone(),
                outcome: self.tx.clone(),
            }
        }
        /// Job 0 takes the only worker and keeps it.
        fn occupy_the_worker(&self) {
            assert!(self.pool.submit(self.job(0, false)).is_ok());
            while self.pool.stats().busy == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    #[test]
    fn past_the_workers_and_the_queue_a_job_is_given_back() {
        let h = Harness::new(settings(1, Duration::from_secs(60)));
        h.occupy_the_worker();
        assert!(h.pool.submit(h.job(1, false)).is_ok());
        assert!(matches!(h.pool.submit(h.job(2, false)), Err(j) if j.n == 2));
        assert_eq!(
            h.pool.stats(),
            Stats {
                workers: 1,
                busy: 1,
                queued: 1
            }
        );
        h.release.store(true, Ordering::SeqCst);
        assert_eq!(h.rx.recv().unwrap(), (0, "served"));
        assert_eq!(h.rx.recv().unwrap(), (1, "served"));
    }

    #[test]
    fn workers_start_as_jobs_need_them_up_to_the_pool_size() {
        let mut s = settings(8, Duration::from_secs(60));
        s.workers = 6;
        let h = Harness::new(s);
        assert_eq!(h.pool.stats().workers, MIN_WORKERS);
        // Eight jobs that each hold their worker, for six workers.
        for _ in 0..8 {
            assert!(h.pool.submit(h.job(0, false)).is_ok());
        }
        while h.pool.stats().busy < 6 {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            h.pool.stats(),
            Stats {
                workers: 6,
                busy: 6,
                queued: 2
            }
        );
        h.release.store(true, Ordering::SeqCst);
        for _ in 0..8 {
            assert_eq!(h.rx.recv().unwrap(), (0, "served"));
        }
    }

    #[test]
    fn a_job_waiting_past_the_queue_timeout_is_expired_while_the_workers_stay_busy() {
        let h = Harness::new(settings(4, Duration::from_millis(200)));
        h.occupy_the_worker();
        assert!(h.pool.submit(h.job(1, false)).is_ok());
        // Expired by the expiry thread, not by a worker: the only worker is still held.
        assert_eq!(h.rx.recv().unwrap(), (1, "expired"));
        assert_eq!(h.pool.stats().queued, 0);
        h.release.store(true, Ordering::SeqCst);
        assert_eq!(h.rx.recv().unwrap(), (0, "served"));
    }

    #[test]
    fn a_queued_job_whose_client_has_gone_is_abandoned_not_served() {
        let h = Harness::new(settings(4, Duration::from_secs(60)));
        h.occupy_the_worker();
        assert!(h.pool.submit(h.job(1, true)).is_ok());
        assert!(h.pool.submit(h.job(2, false)).is_ok());
        std::thread::sleep(CHECK_GONE_AFTER);
        h.release.store(true, Ordering::SeqCst);
        assert_eq!(h.rx.recv().unwrap(), (0, "served"));
        assert_eq!(h.rx.recv().unwrap(), (1, "abandoned"));
        assert_eq!(h.rx.recv().unwrap(), (2, "served"));
    }
}
