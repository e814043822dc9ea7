//! The fixed pool of worker threads and the bounded queue in front of it. A full queue refuses
//! the job at once (the caller answers 503), so the acceptor never blocks.

use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// What a worker does with each job.
pub type Work<T> = Arc<dyn Fn(T) + Send + Sync>;

/// Workers waiting on one bounded queue.
pub struct Pool<T> {
    tx: SyncSender<T>,
}

impl<T: Send + 'static> Pool<T> {
    /// Start `workers` threads that run `work` on each job; at most `queue_size` jobs wait.
    pub fn start(workers: usize, queue_size: usize, work: Work<T>) -> io::Result<Pool<T>> {
        let (tx, rx) = sync_channel::<T>(queue_size.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let work = work.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || run_worker(&rx, &*work))?;
        }
        Ok(Pool { tx })
    }

    /// Queue `job`, or give it back when the queue is full.
    pub fn try_submit(&self, job: T) -> Result<(), T> {
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
        })
    }
}

fn run_worker<T>(rx: &Mutex<Receiver<T>>, work: &(dyn Fn(T) + Send + Sync)) {
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(job) = next else {
            return;
        };
        work(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::sync::Barrier;

    #[test]
    fn past_the_workers_and_the_queue_a_job_is_given_back() {
        let gate = Arc::new(Barrier::new(2));
        let (done_tx, done_rx) = channel();
        let done_tx = Mutex::new(done_tx);
        let g = gate.clone();
        let pool = Pool::start(
            1,
            1,
            Arc::new(move |n: u32| {
                if n == 1 {
                    g.wait();
                }
                let _ = done_tx.lock().unwrap().send(n);
            }),
        )
        .unwrap();
        assert!(pool.try_submit(1).is_ok());
        // Job 1 holds the only worker; job 2 waits in the queue (until the worker takes job 1
        // off it, the queue may still hold job 1, so job 2 may be refused: retry).
        let mut queued = pool.try_submit(2);
        while let Err(job) = queued {
            std::thread::yield_now();
            queued = pool.try_submit(job);
        }
        assert_eq!(pool.try_submit(3), Err(3));
        gate.wait();
        assert_eq!(done_rx.recv().unwrap(), 1);
        assert_eq!(done_rx.recv().unwrap(), 2);
    }
}
