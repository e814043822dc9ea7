//! Keeps tiny_http accepting and bounds slow clients.
//!
//! Accepted sockets get their read and write timeouts by inheriting them from the listening socket
//! (tiny_http has no hook on accepted sockets), so an idle or stalled client cannot hold a thread
//! or a descriptor for long. But `accept()` obeys the listener's read timeout as well, and
//! tiny_http's accept thread ends at its first accept error (and dies without a word when it runs
//! out of descriptors), so a probe connects often enough that `accept()` never times out and
//! notices when nobody accepts, and then a new tiny_http server takes over the same socket while
//! the old one's open connections are still served.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the listener does with each request (the same for the current server and old ones).
pub type Handler = Arc<dyn Fn(tiny_http::Request) + Send + Sync>;

/// How accepted connections are bounded.
pub struct Options {
    /// Each read from a client (request head, body, the next request on a kept-alive connection).
    pub read_timeout: Duration,
    /// Each write to a client.
    pub write_timeout: Duration,
    /// Whether to probe the listener (off only in tests of the restart path).
    pub probe: bool,
}

/// A listening socket and the tiny_http server currently accepting on it.
pub struct Listener {
    addr: SocketAddr,
    /// A second handle on the socket: it stays open when tiny_http's accept thread ends (dropping
    /// its own), so that a new server can take over without a gap in which connections are refused.
    spare: TcpListener,
    current: Mutex<Arc<tiny_http::Server>>,
    restarts: AtomicUsize,
    last_restart: Mutex<Option<Instant>>,
}

impl Listener {
    /// Set the inherited socket options on `socket`, start a tiny_http server on it and, with
    /// `options.probe`, the probe thread.
    pub fn start(socket: TcpListener, options: &Options) -> io::Result<Arc<Listener>> {
        crate::sys::set_inherited_socket_options(
            &socket,
            options.read_timeout,
            options.write_timeout,
        )?;
        let addr = socket.local_addr()?;
        let spare = socket.try_clone()?;
        let server = tiny_http::Server::from_listener(socket, None).map_err(io::Error::other)?;
        let listener = Arc::new(Listener {
            addr,
            spare,
            current: Mutex::new(Arc::new(server)),
            restarts: AtomicUsize::new(0),
            last_restart: Mutex::new(None),
        });
        if options.probe {
            start_probe(&listener, probe_interval(options.read_timeout))?;
        }
        Ok(listener)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times a new server took over the socket.
    #[cfg(test)]
    pub fn restarts(&self) -> usize {
        self.restarts.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<tiny_http::Server> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Hand every request to `handle`, forever. When the current server stops (its accept thread
    /// ended, or the probe woke us), a new one takes over and the old one is drained on a thread
    /// of its own until its connections have been quiet for an hour.
    pub fn run(&self, handle: Handler) {
        loop {
            let server = self.current();
            match server.recv() {
                Ok(req) => handle(req),
                Err(e) => {
                    log::warn!("the HTTP listener stopped accepting ({e}); restarting it");
                    self.restart();
                    drain(server, handle.clone());
                }
            }
        }
    }

    /// Start a new server on the socket; retried once a second while it fails (out of
    /// descriptors, an immediate retry would fail the same way).
    fn restart(&self) {
        loop {
            {
                let mut last = self.last_restart.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                    std::thread::sleep(Duration::from_secs(1));
                }
                *last = Some(Instant::now());
            }
            let started = self
                .spare
                .try_clone()
                .map_err(|e| e.to_string())
                .and_then(|l| tiny_http::Server::from_listener(l, None).map_err(|e| e.to_string()));
            match started {
                Ok(fresh) => {
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => log::error!("cannot restart the HTTP listener: {e}"),
            }
        }
    }
}

/// Serve the requests still arriving on an old server's open connections.
fn drain(server: Arc<tiny_http::Server>, handle: Handler) {
    let spawned = std::thread::Builder::new()
        .name("listener-old".into())
        .spawn(move || {
            while let Ok(Some(req)) = server.recv_timeout(Duration::from_secs(3600)) {
                handle(req);
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot drain the old HTTP listener: {e}");
    }
}

/// At least three probes per read timeout, so that `accept()` never waits out a whole one.
fn probe_interval(read_timeout: Duration) -> Duration {
    (read_timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Probes the listener with a line tiny_http refuses by itself (a 400 that never reaches a
/// worker). Besides keeping `accept()` from timing out, a new connection unsticks connections
/// tiny_http's pool left queued without a thread (it gets a thread, which then takes the queued
/// one). A probe that connects but is never accepted means the accept thread is gone: the
/// listener is woken to start a new server.
fn start_probe(listener: &Arc<Listener>, every: Duration) -> io::Result<()> {
    let listener = listener.clone();
    let mut target = listener.addr;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    std::thread::Builder::new()
        .name("listener-probe".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            if probe_unaccepted(target) {
                log::warn!("the HTTP listener does not answer; restarting it");
                listener.current().unblock();
            }
        })
        .map(|_| ())
}

/// Whether a probe connected but nobody accepted it. Without a connection (e.g. no descriptor
/// left here) nothing can be concluded.
fn probe_unaccepted(target: SocketAddr) -> bool {
    let Ok(mut probe) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        return false;
    };
    let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
    let mut byte = [0u8; 1];
    let answered =
        probe.write_all(b"PROBE\r\n").is_ok() && matches!(probe.read(&mut byte), Ok(n) if n > 0);
    // tiny_http can leave an accepted connection waiting for a free thread (its pool hands a
    // burst of new connections to fewer idle threads): only a probe nobody accepted means the
    // accept thread is gone.
    let probe_port = probe.local_addr().map(|a| a.port()).unwrap_or(0);
    !answered && !accepted(target.port(), probe_port)
}

/// Whether the connection from our `probe_port` to our `listen_port` was accepted: on Linux a
/// connection still in the accept queue has no inode yet. Gone from the tables, the connection
/// ended, so something accepted and closed it; where the tables cannot be read, an unanswered
/// probe counts as not accepted.
fn accepted(listen_port: u16, probe_port: u16) -> bool {
    let Some(entries) = super::tcp_table::read() else {
        return false;
    };
    entries
        .iter()
        .find(|e| e.local_port == listen_port && e.remote.port() == probe_port)
        .is_none_or(|e| e.inode != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_handler() -> Handler {
        Arc::new(|req: tiny_http::Request| {
            let _ = req.respond(tiny_http::Response::from_string("ok"));
        })
    }

    fn start(read_timeout: Duration) -> Arc<Listener> {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        let options = Options {
            read_timeout,
            write_timeout: Duration::from_secs(5),
            probe: false,
        };
        let listener = Listener::start(socket, &options).unwrap();
        let running = listener.clone();
        std::thread::spawn(move || running.run(ok_handler()));
        listener
    }

    /// One keep-alive request on `conn`; the body of the answer.
    fn get(conn: &mut TcpStream) -> String {
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.ends_with(b"ok") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    fn wait_for_restarts(listener: &Listener, n: usize) {
        for _ in 0..200 {
            if listener.restarts() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no restart: {}", listener.restarts());
    }

    #[test]
    fn an_accept_that_times_out_restarts_the_server_and_new_connections_are_served() {
        let listener = start(Duration::from_millis(100));
        wait_for_restarts(&listener, 1);
        let mut conn = TcpStream::connect(listener.addr()).unwrap();
        assert!(get(&mut conn).starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn a_connection_opened_before_a_restart_is_still_served_after_it() {
        let listener = start(Duration::from_secs(30));
        let mut before = TcpStream::connect(listener.addr()).unwrap();
        assert!(get(&mut before).starts_with("HTTP/1.1 200"));
        // What the probe does when nobody accepts.
        listener.current().unblock();
        wait_for_restarts(&listener, 1);
        assert!(get(&mut before).starts_with("HTTP/1.1 200"));
        let mut after = TcpStream::connect(listener.addr()).unwrap();
        assert!(get(&mut after).starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn probes_come_at_least_three_times_per_read_timeout() {
        assert_eq!(
            probe_interval(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
        assert_eq!(
            probe_interval(Duration::from_millis(900)),
            Duration::from_millis(300)
        );
        assert_eq!(
            probe_interval(Duration::from_millis(150)),
            Duration::from_millis(100)
        );
    }
}
