//! The server: a blocking tiny_http acceptor hands each request to a fixed pool of worker threads
//! through a bounded queue (full queue → 503 with Retry-After, never a hang), routing, the API key
//! check, the panic guard, and one access-log line per request. A watch thread keeps the listener
//! alive: tiny_http stops accepting for good at its first accept error.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::anthropic::{request::Purpose, Messages};
use crate::debug::DebugCapture;
use crate::error::Error;
use crate::http::Incoming;
use crate::openai::Chat;
use crate::pipeline::{self, respond_error, App, ErrorShape};
use crate::responses::Responses;
use crate::util::{format_iso8601, now_unix_millis, IsoStyle};

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl Running {
    /// Block until the acceptor stops (it does not, short of a fatal listener error).
    pub fn wait(self) {
        let _ = self.acceptor.join();
    }
}

/// Bind, start the workers, the acceptor and the background threads.
pub fn serve(app: Arc<App>) -> Result<Running, Error> {
    let cfg = app.config.clone();
    let addr = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()
        .map_err(|e| Error::Config(format!("cannot resolve SERVER_HOST={}: {e}", cfg.host)))?
        .next()
        .ok_or_else(|| Error::Config(format!("SERVER_HOST={} resolves to nothing", cfg.host)))?;
    let listener = TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "is another program using port {}? choose another with --port",
                cfg.port
            ),
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another with --port"
                    .to_string()
            }
            _ => "check SERVER_HOST and SERVER_PORT".to_string(),
        };
        Error::Config(format!("cannot listen on {addr}: {e} ({hint})"))
    })?;
    let write_timeout = cfg.client_read_timeout.max(Duration::from_secs(60));
    sockopt::set_inherited_options(&listener, cfg.client_read_timeout, write_timeout);
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("cannot read the bound address: {e}")))?;
    // A second handle on the listening socket: it stays open if tiny_http's accept thread ends, so
    // a new one can take over (see `accept_loop`).
    let spare = listener
        .try_clone()
        .map_err(|e| Error::Config(format!("cannot duplicate the listener on {bound}: {e}")))?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::Config(format!("cannot start the HTTP server on {bound}: {e}")))?;
    let server = Arc::new(server);

    let (tx, rx) = sync_channel::<tiny_http::Request>(cfg.queue_size.max(1));
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..cfg.workers {
        let rx = rx.clone();
        let app = app.clone();
        std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || worker(&app, &rx))
            .map_err(|e| Error::Config(format!("cannot start worker threads: {e}")))?;
    }

    for account in app.pool.accounts.iter().filter(|a| a.enabled) {
        account.store.start_timer();
    }
    crate::kiro::discovery::spawn(app.config.clone());
    let bg = app.clone();
    let _ = std::thread::Builder::new()
        .name("models".into())
        .spawn(move || loop {
            bg.refresh_models();
            std::thread::sleep(Duration::from_secs(3600));
        });

    let current = Arc::new(Mutex::new(server));
    watch_listener(bound, cfg.client_read_timeout, current.clone());
    let acceptor = std::thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || accept_loop(&app, &current, &spare, &tx))
        .map_err(|e| Error::Config(format!("cannot start the acceptor: {e}")))?;
    Ok(Running {
        addr: bound,
        acceptor,
    })
}

/// The server currently accepting (replaced when its accept thread ends).
type Current = Mutex<Arc<tiny_http::Server>>;

fn current_server(current: &Current) -> Arc<tiny_http::Server> {
    current.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Hand each request to the workers, or answer 503 when the queue is full.
///
/// tiny_http's accept thread ends at the first `accept()` error (the listener's own read timeout,
/// see [`watch_listener`]), and panics without a word when it cannot duplicate an accepted socket
/// (out of file descriptors); either way that server never accepts again. Then a new server takes
/// over the same socket, and the old one's connections are still served until they have been
/// quiet for an hour.
fn accept_loop(
    app: &Arc<App>,
    current: &Current,
    spare: &TcpListener,
    tx: &SyncSender<tiny_http::Request>,
) {
    let mut last_restart: Option<Instant> = None;
    loop {
        let server = current_server(current);
        let e = match server.recv() {
            Ok(req) => {
                dispatch(app, req, tx);
                continue;
            }
            Err(e) => e,
        };
        log::warn!("the HTTP listener stopped accepting ({e}); restarting it");
        let fresh = loop {
            // Out of file descriptors, an immediate restart would fail the same way.
            if last_restart.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                std::thread::sleep(Duration::from_secs(1));
            }
            last_restart = Some(Instant::now());
            let started = spare
                .try_clone()
                .map_err(|e| e.to_string())
                .and_then(|l| tiny_http::Server::from_listener(l, None).map_err(|e| e.to_string()));
            match started {
                Ok(fresh) => break fresh,
                Err(e) => log::error!("cannot restart the HTTP listener: {e}"),
            }
        };
        *current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        let tx = tx.clone();
        let app = app.clone();
        let _ = std::thread::Builder::new()
            .name("acceptor-old".into())
            .spawn(move || {
                while let Ok(Some(req)) = server.recv_timeout(Duration::from_secs(3600)) {
                    dispatch(&app, req, &tx);
                }
            });
    }
}

fn dispatch(app: &App, req: tiny_http::Request, tx: &SyncSender<tiny_http::Request>) {
    match tx.try_send(req) {
        Ok(()) => {}
        Err(TrySendError::Full(req)) | Err(TrySendError::Disconnected(req)) => {
            let mut inc = Incoming::new(req);
            let started = Instant::now();
            if inc.method == "GET" && matches!(inc.path.as_str(), "/" | "/health") {
                // Liveness stays visible while every worker is busy (it needs no worker).
                route(app, &mut inc);
            } else {
                reject_overloaded(&mut inc);
            }
            access_log(&inc, started);
        }
    }
}

/// Probes the listener every second (at least three times per `CLIENT_READ_TIMEOUT`) with a line
/// tiny_http refuses by itself (a 400 that never reaches a worker). This keeps `accept()` from
/// timing out: on Linux it obeys the listener's SO_RCVTIMEO, which is set so that accepted sockets
/// inherit it. It also unsticks connections tiny_http's pool left queued without a thread (a new
/// connection gives the pool a thread that then takes the queued one). A probe that connects but
/// is never accepted means the accept thread is gone: the acceptor is woken to start a new server.
fn watch_listener(bound: SocketAddr, read_timeout: Duration, current: Arc<Current>) {
    let mut target = bound;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let every = (read_timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let spawned = std::thread::Builder::new()
        .name("listener-watch".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            // Without a connection (e.g. no descriptor left here) nothing can be concluded.
            let Ok(mut probe) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
                continue;
            };
            let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
            let mut byte = [0u8; 1];
            let answered = probe.write_all(b"PROBE\r\n").is_ok()
                && matches!(probe.read(&mut byte), Ok(n) if n > 0);
            // tiny_http can leave an accepted connection waiting for a free thread (its pool
            // hands a burst of new connections to fewer idle threads): only a probe nobody
            // accepted means the accept thread is gone.
            let probe_port = probe.local_addr().map(|a| a.port()).unwrap_or(0);
            if !answered && !accepted(bound.port(), probe_port) {
                log::warn!("the HTTP listener does not answer; restarting it");
                current_server(&current).unblock();
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the listener watch thread: {e}");
    }
}

/// Whether the connection from our `probe_port` to our `listen_port` was accepted. On Linux a
/// connection still in the accept queue has no inode in /proc/net/tcp yet; where that cannot be
/// read, an unanswered probe counts as not accepted.
fn accepted(listen_port: u16, probe_port: u16) -> bool {
    let port = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut readable = false;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        readable = true;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(inode)) = (f.get(1), f.get(2), f.get(9)) else {
                continue;
            };
            if port(local) == Some(listen_port) && port(remote) == Some(probe_port) {
                return *inode != "0";
            }
        }
    }
    // Gone from the table: the connection ended, so something accepted and closed it.
    readable
}

fn reject_overloaded(inc: &mut Incoming) {
    let shape = error_shape(&inc.path);
    respond_error(inc, shape, &Error::Overloaded, &mut DebugCapture::off());
}

fn worker(app: &App, rx: &Mutex<Receiver<tiny_http::Request>>) {
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(req) = next else {
            return;
        };
        let started = Instant::now();
        let mut inc = Incoming::new(req);
        let outcome = catch_unwind(AssertUnwindSafe(|| route(app, &mut inc)));
        if outcome.is_err() {
            log::error!("a handler panicked on {} {}", inc.method, inc.path);
            if !inc.responded() {
                let e = Error::Internal("the gateway hit an unexpected error".into());
                let shape = error_shape(&inc.path);
                respond_error(&mut inc, shape, &e, &mut DebugCapture::off());
            }
        }
        access_log(&inc, started);
    }
}

fn access_log(inc: &Incoming, started: Instant) {
    log::info!(
        "{} {} {} model={} {}ms {}B",
        inc.method,
        inc.path,
        inc.status,
        if inc.model.is_empty() {
            "-"
        } else {
            &inc.model
        },
        started.elapsed().as_millis(),
        inc.bytes
    );
}

/// Which endpoint a path names: picked once per request, it decides the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Root,
    Health,
    Models,
    Chat,
    Messages,
    CountTokens,
    Responses,
    Unknown,
}

impl Endpoint {
    fn of(path: &str) -> Endpoint {
        match path.trim_end_matches('/') {
            "" => Endpoint::Root,
            "/health" => Endpoint::Health,
            "/v1/models" => Endpoint::Models,
            "/v1/chat/completions" => Endpoint::Chat,
            "/v1/messages" => Endpoint::Messages,
            "/v1/messages/count_tokens" => Endpoint::CountTokens,
            "/v1/responses" => Endpoint::Responses,
            _ => Endpoint::Unknown,
        }
    }
}

/// The shape of every error on `path` (auth, bad method, overload, panic, no route): Anthropic's
/// under `/v1/messages`, OpenAI's everywhere else.
fn error_shape(path: &str) -> &'static dyn ErrorShape {
    if path.starts_with("/v1/messages") {
        &Messages(Purpose::Generate)
    } else {
        &Chat
    }
}

fn route(app: &App, inc: &mut Incoming) {
    if inc.method == "OPTIONS" {
        inc.respond_bytes(
            204,
            "text/plain",
            Vec::new(),
            &[
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()),
                ("Access-Control-Allow-Headers", "*".into()),
                ("Access-Control-Max-Age", "86400".into()),
            ],
        );
        return;
    }
    let shape = error_shape(&inc.path);
    match (Endpoint::of(&inc.path), inc.method.as_str()) {
        (Endpoint::Root, "GET") => inc.respond_json(
            200,
            &json!({"status": "ok", "message": "Kiro Gateway is running", "version": crate::VERSION}),
            &[],
        ),
        (Endpoint::Health, "GET") => health(app, inc),
        (Endpoint::Models, _) => {
            if pipeline::admit(app, inc, shape, "GET") {
                crate::openai::list_models(app, inc);
            }
        }
        (Endpoint::Chat, _) => pipeline::serve(app, inc, &Chat),
        (Endpoint::Messages, _) => pipeline::serve(app, inc, &Messages(Purpose::Generate)),
        (Endpoint::CountTokens, _) => pipeline::serve(app, inc, &Messages(Purpose::CountTokens)),
        (Endpoint::Responses, _) => pipeline::serve(app, inc, &Responses),
        _ => {
            let e = Error::NotFound(format!("No route for {} {}.", inc.method, inc.path));
            respond_error(inc, shape, &e, &mut DebugCapture::off());
        }
    }
}

fn health(app: &App, inc: &mut Incoming) {
    let accounts = app.pool.status();
    inc.respond_json(
        200,
        &json!({
            "status": "healthy",
            "timestamp": format_iso8601(now_unix_millis() as i64, IsoStyle::Offset { micros: false }),
            "version": crate::VERSION,
            "upstream": upstream_status(app),
            "ide_version": app.config.ide_version.get(),
            "accounts": accounts,
        }),
        &[],
    );
}

/// How Kiro last took the gateway's client identity: `"client version refused"` until a request
/// is served again after Kiro refused the version.
fn upstream_status(app: &App) -> &'static str {
    if app.config.ide_version.refused().is_some() {
        "client version refused"
    } else {
        "ok"
    }
}

/// Socket options set on the listener so that Linux copies them to every accepted connection
/// (tiny_http gives us no hook on accepted sockets): read and write timeouts, so a stalled client
/// cannot hold a worker forever, and TCP_NODELAY, so each SSE event leaves at once. `accept()`
/// obeys the read timeout too, which `watch_listener` deals with.
mod sockopt {
    use std::net::TcpListener;
    use std::time::Duration;

    #[cfg(target_os = "linux")]
    pub fn set_inherited_options(l: &TcpListener, read: Duration, write: Duration) {
        use std::os::fd::AsRawFd;
        use std::os::raw::{c_int, c_long, c_void};
        #[repr(C)]
        struct Timeval {
            tv_sec: c_long,
            tv_usec: c_long,
        }
        extern "C" {
            fn setsockopt(
                fd: c_int,
                level: c_int,
                name: c_int,
                value: *const c_void,
                len: u32,
            ) -> c_int;
        }
        const SOL_SOCKET: c_int = 1;
        const SO_RCVTIMEO: c_int = 20;
        const SO_SNDTIMEO: c_int = 21;
        const IPPROTO_TCP: c_int = 6;
        const TCP_NODELAY: c_int = 1;
        let fd = l.as_raw_fd();
        let tv = |d: Duration| Timeval {
            tv_sec: d.as_secs() as c_long,
            tv_usec: d.subsec_micros() as c_long,
        };
        let (r, w) = (tv(read), tv(write));
        let one: c_int = 1;
        // SAFETY: fd is a valid open socket for the lifetime of `l`; each value points to a live
        // local of the size passed.
        unsafe {
            setsockopt(
                fd,
                SOL_SOCKET,
                SO_RCVTIMEO,
                (&r as *const Timeval).cast(),
                std::mem::size_of::<Timeval>() as u32,
            );
            setsockopt(
                fd,
                SOL_SOCKET,
                SO_SNDTIMEO,
                (&w as *const Timeval).cast(),
                std::mem::size_of::<Timeval>() as u32,
            );
            setsockopt(
                fd,
                IPPROTO_TCP,
                TCP_NODELAY,
                (&one as *const c_int).cast(),
                std::mem::size_of::<c_int>() as u32,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn set_inherited_options(_: &TcpListener, _: Duration, _: Duration) {}
}
