//! The fixed pool of worker threads and the bounded queue in front of it.
//!
//! A full queue refuses a job at once (the caller answers 503), so the acceptor never blocks. A job
//! that waits `queue_timeout` without a worker is expired (answered 503 by the job itself), and a
//! job whose client has gone while it waited is abandoned instead of served. Workers run on a small
//! explicit stack: a blocked thread costs the stack it touched, and the pool is sized for hundreds
//! of open streams.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A job that waited at least this long is checked for a client that has gone before it is
/// served (the check reads the kernel's TCP tables, not worth it for a job taken at once).
const CHECK_GONE_AFTER: Duration = Duration::from_millis(100);

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
    queue: Mutex<VecDeque<Waiting<J>>>,
    /// Signalled for the workers when a job is queued.
    job_queued: Condvar,
    /// Signalled for the expiry thread when the queue stops being empty.
    first_queued: Condvar,
    settings: Settings,
    busy: AtomicUsize,
}

struct Waiting<J> {
    since: Instant,
    job: J,
}

impl<J: Job> Pool<J> {
    /// Start the workers and the thread that expires jobs waiting too long.
    pub fn start(settings: Settings) -> io::Result<Pool<J>> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            job_queued: Condvar::new(),
            first_queued: Condvar::new(),
            settings,
            busy: AtomicUsize::new(0),
        });
        for i in 0..settings.workers.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .stack_size(settings.stack_size)
                .spawn(move || run_worker(&shared))?;
        }
        let expiry = shared.clone();
        std::thread::Builder::new()
            .name("queue-expiry".into())
            .stack_size(settings.stack_size)
            .spawn(move || run_expiry(&expiry))?;
        Ok(Pool { shared })
    }

    /// Queue `job`, or give it back when the queue is full.
    pub fn submit(&self, job: J) -> Result<(), J> {
        let mut queue = self.shared.lock();
        if queue.len() >= self.shared.settings.queue_size.max(1) {
            return Err(job);
        }
        queue.push_back(Waiting {
            since: Instant::now(),
            job,
        });
        if queue.len() == 1 {
            self.shared.first_queued.notify_one();
        }
        drop(queue);
        self.shared.job_queued.notify_one();
        Ok(())
    }

    /// Workers, how many are busy, how many jobs wait.
    #[cfg(test)]
    pub fn stats(&self) -> Stats {
        Stats {
            workers: self.shared.settings.workers.max(1),
            busy: self.shared.busy.load(Ordering::Relaxed),
            queued: self.shared.lock().len(),
        }
    }
}

impl<J> Shared<J> {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Waiting<J>>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn run_worker<J: Job>(shared: &Shared<J>) {
    loop {
        let next = {
            let mut queue = shared.lock();
            loop {
                if let Some(next) = queue.pop_front() {
                    break next;
                }
                queue = shared
                    .job_queued
                    .wait(queue)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let waited = next.since.elapsed();
        if waited >= shared.settings.queue_timeout {
            next.job.expire();
        } else if waited >= CHECK_GONE_AFTER && next.job.client_gone() {
            next.job.abandon();
        } else {
            shared.busy.fetch_add(1, Ordering::Relaxed);
            next.job.serve();
            shared.busy.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Expire the jobs at the head of the queue as their wait reaches the queue timeout (the workers
/// may all be busy for minutes).
fn run_expiry<J: Job>(shared: &Shared<J>) {
    let timeout = shared.settings.queue_timeout;
    loop {
        let expired = {
            let mut queue = shared.lock();
            loop {
                let due = queue.front().map(|w| w.since + timeout);
                match due {
                    None => {
                        queue = shared
                            .first_queued
                            .wait(queue)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                    Some(due) => {
                        let now = Instant::now();
                        if due <= now {
                            if let Some(w) = queue.pop_front() {
                                break w;
                            }
                        } else {
                            queue = shared
                                .first_queued
                                .wait_timeout(queue, due - now)
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
