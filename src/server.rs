//! The server: a blocking tiny_http acceptor hands each request to a pool of at most `WORKERS`
//! worker threads through a bounded queue (a full queue or a wait past `QUEUE_TIMEOUT` → 503 with
//! Retry-After, never a hang), routing, the panic guard, and one access-log line per request.
//! What keeps the listener accepting is in [`listener`], the workers and their queue in [`pool`].

mod listener;
mod pool;
mod tcp_table;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use crate::anthropic::{request::Purpose, Messages};
use crate::debug::DebugCapture;
use crate::error::Error;
use crate::http::Incoming;
use crate::openai::Chat;
use crate::pipeline::{self, respond_error, App, ErrorShape};
use crate::responses::Responses;
use crate::util::{format_iso8601, now_unix_millis, IsoStyle};

use listener::Listener;
use pool::{Job, Pool};

/// Stack of each worker thread. A worker costs what its stack touched, and the deepest
/// request a worker handles is bounded: JSON nests at most 128 levels (serde_json's limit), and
/// everything that walks a request's JSON follows that nesting. A debug build spends several
/// times the stack per level (no inlining, a slot for every local: about 1.8 KiB per level of
/// parsing alone, so a 125-level Responses request overflowed 256 KiB and aborted the process):
/// it gets four times as much, so that tests reach the same depths as the release build.
const WORKER_STACK_BYTES: usize = if cfg!(debug_assertions) {
    1024 * 1024
} else {
    256 * 1024
};

/// How often usage per client key is written to the state directory.
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(2);

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
    let cfg = crate::config::ServerSettings::from_config(&app.config);
    let socket = bind(&cfg.host, cfg.port)?;
    let options = listener::Options {
        read_timeout: cfg.client_read_timeout,
        write_timeout: cfg.client_read_timeout.max(Duration::from_secs(60)),
        probe: true,
    };
    let listener = Listener::start(socket, &options)
        .map_err(|e| Error::Config(format!("cannot start the HTTP server: {e}")))?;
    let pool = Pool::start(pool::Settings {
        workers: cfg.workers,
        queue_size: cfg.queue_size,
        queue_timeout: cfg.queue_timeout,
        stack_size: WORKER_STACK_BYTES,
    })
    .map_err(|e| Error::Config(format!("cannot start worker threads: {e}")))?;

    crate::metrics::global().set_workers(cfg.workers);
    crate::metrics::global().set_client_identity(&crate::monitor::client_identity(&app.config));
    app.usage.start_flusher(USAGE_FLUSH_EVERY);
    for account in app.pool.accounts.iter().filter(|a| a.enabled) {
        account.store.start_timer();
    }
    crate::kiro::discovery::spawn(crate::config::UpstreamSettings::from_config(&app.config));
    crate::kiro::usage_limits::spawn(&app.pool.accounts, app.client.settings().clone());
    let bg = app.clone();
    let _ = std::thread::Builder::new()
        .name("models".into())
        .spawn(move || loop {
            bg.refresh_models();
            std::thread::sleep(Duration::from_secs(3600));
        });

    let addr = listener.addr();
    let acceptor = std::thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || {
            let port = listener.addr().port();
            listener.run(Arc::new(move |req| dispatch(&app, &pool, port, req)));
        })
        .map_err(|e| Error::Config(format!("cannot start the acceptor: {e}")))?;
    Ok(Running { addr, acceptor })
}

/// Bind the listening socket; the error says what to do about the usual causes.
fn bind(host: &str, port: u16) -> Result<TcpListener, Error> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Config(format!("cannot resolve SERVER_HOST={host}: {e}")))?
        .next()
        .ok_or_else(|| Error::Config(format!("SERVER_HOST={host} resolves to nothing")))?;
    TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                format!("is another program using port {port}? choose another with --port")
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another with --port"
                    .to_string()
            }
            _ => "check SERVER_HOST and SERVER_PORT".to_string(),
        };
        Error::Config(format!("cannot listen on {addr}: {e} ({hint})"))
    })
}

/// A request on its way to a worker.
struct Queued {
    app: Arc<App>,
    req: tiny_http::Request,
    /// The listener's port, which names the client's connection in the kernel's TCP tables.
    port: u16,
}

impl Job for Queued {
    fn serve(self) {
        serve_request(&self.app, self.req, self.port);
    }

    fn expire(self) {
        let metrics = crate::metrics::global();
        metrics.dequeued();
        metrics.overload_refused();
        let mut inc = Incoming::new(self.req);
        reject_overloaded(&mut inc);
        crate::monitor::finish(&self.app, &inc);
    }

    fn client_gone(&self) -> bool {
        self.req
            .remote_addr()
            .is_some_and(|remote| tcp_table::client_gone(self.port, *remote))
    }

    fn abandon(self) {
        crate::metrics::global().dequeued();
        let inc = Incoming::new(self.req);
        log::info!(
            "{} {} dropped: the client left while it waited for a worker",
            inc.method,
            inc.path
        );
    }
}

/// Hand the request to the workers, or answer 503 when the queue is full.
fn dispatch(app: &Arc<App>, pool: &Pool<Queued>, port: u16, req: tiny_http::Request) {
    let metrics = crate::metrics::global();
    metrics.queued();
    let queued = Queued {
        app: app.clone(),
        req,
        port,
    };
    let Err(Queued { req, .. }) = pool.submit(queued) else {
        return;
    };
    metrics.dequeued();
    let mut inc = Incoming::new(req);
    let read = matches!(inc.method.as_str(), "GET" | "HEAD");
    if read && matches!(inc.path.as_str(), "/" | "/health") {
        // Liveness stays visible while every worker is busy (it needs no worker).
        route(app, &mut inc);
    } else {
        metrics.overload_refused();
        reject_overloaded(&mut inc);
    }
    crate::monitor::finish(app, &inc);
}

fn reject_overloaded(inc: &mut Incoming) {
    let shape = error_shape(&inc.path);
    respond_error(inc, shape, &Error::Overloaded, &mut DebugCapture::off());
}

/// One request on a worker: route it, answer 500 if a handler panicked before answering, log it.
fn serve_request(app: &App, req: tiny_http::Request, port: u16) {
    crate::metrics::global().worker_busy();
    let remote = req.remote_addr().copied();
    let mut inc = Incoming::new(req);
    if let Some(remote) = remote {
        inc.set_gone_check(move || tcp_table::client_gone(port, remote));
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| route(app, &mut inc)));
    if outcome.is_err() {
        log::error!("a handler panicked on {} {}", inc.method, inc.path);
        if !inc.responded() {
            let e = Error::Internal("the gateway hit an unexpected error".into());
            let shape = error_shape(&inc.path);
            respond_error(&mut inc, shape, &e, &mut DebugCapture::off());
        }
    }
    crate::monitor::finish(app, &inc);
    crate::metrics::global().worker_idle();
}

/// Which endpoint a path names: picked once per request, it decides the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Root,
    /// `/api/hello`: Claude Code probes it (`HEAD`) before its first request.
    Hello,
    Health,
    Metrics,
    Models,
    /// `/v1/models/{id}`.
    Model,
    Chat,
    Messages,
    CountTokens,
    Responses,
    /// `/v1/responses/{id}` and below (retrieve, delete, cancel, input items).
    ResponseObject,
    Unknown,
}

impl Endpoint {
    fn of(path: &str) -> Endpoint {
        match path.trim_end_matches('/') {
            "" => Endpoint::Root,
            "/api/hello" => Endpoint::Hello,
            "/health" => Endpoint::Health,
            "/metrics" => Endpoint::Metrics,
            "/v1/models" => Endpoint::Models,
            "/v1/chat/completions" => Endpoint::Chat,
            "/v1/messages" => Endpoint::Messages,
            "/v1/messages/count_tokens" => Endpoint::CountTokens,
            "/v1/responses" => Endpoint::Responses,
            p if model_id_of(p).is_some() => Endpoint::Model,
            p if p.starts_with("/v1/responses/") => Endpoint::ResponseObject,
            _ => Endpoint::Unknown,
        }
    }
}

/// The model a `/v1/models/{id}` path names.
fn model_id_of(path: &str) -> Option<&str> {
    path.trim_end_matches('/')
        .strip_prefix("/v1/models/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
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
    // HEAD is answered like GET (tiny_http leaves the body out); Claude Code sends `HEAD /`
    // (2.1.197) or `HEAD /api/hello` (2.1.332) first.
    let read = matches!(inc.method.as_str(), "GET" | "HEAD");
    match Endpoint::of(&inc.path) {
        Endpoint::Root if read && crate::monitor::wants_html(inc) => {
            crate::monitor::status_page(app, inc)
        }
        Endpoint::Metrics if read => crate::monitor::metrics_page(app, inc),
        Endpoint::Root | Endpoint::Hello if read => inc.respond_json(
            200,
            &json!({"status": "ok", "message": "Kiro Gateway is running", "version": crate::VERSION}),
            &[],
        ),
        Endpoint::Health if read => health(app, inc),
        Endpoint::Root | Endpoint::Hello | Endpoint::Health | Endpoint::Metrics => {
            let e = Error::MethodNotAllowed {
                method: inc.method.clone(),
                path: inc.path.clone(),
                allow: "GET, HEAD",
            };
            respond_error(inc, shape, &e, &mut DebugCapture::off());
        }
        Endpoint::Models | Endpoint::Model => {
            // The same path serves both APIs' model lists; the anthropic SDKs (and Claude Code)
            // always send `anthropic-version`, OpenAI clients never do.
            let anthropic = inc.header("anthropic-version").is_some();
            let shape: &dyn ErrorShape = if anthropic {
                &Messages(Purpose::Generate)
            } else {
                &Chat
            };
            if pipeline::admit(app, inc, shape, "GET") {
                let path = inc.path.clone();
                match (anthropic, model_id_of(&path)) {
                    (false, None) => crate::openai::list_models(app, inc),
                    (false, Some(id)) => crate::openai::retrieve_model(app, inc, id),
                    (true, None) => crate::anthropic::list_models(app, inc),
                    (true, Some(id)) => crate::anthropic::retrieve_model(app, inc, id),
                }
            }
        }
        Endpoint::Chat => pipeline::serve(app, inc, &Chat),
        Endpoint::Messages => pipeline::serve(app, inc, &Messages(Purpose::Generate)),
        Endpoint::CountTokens => pipeline::serve(app, inc, &Messages(Purpose::CountTokens)),
        Endpoint::Responses => pipeline::serve(app, inc, &Responses),
        Endpoint::ResponseObject => {
            let e = if pipeline::authorized(app, inc) {
                Error::NotFound(format!(
                    "{} {} cannot be served: this gateway does not keep response objects. It answers each response as it is made and keeps only its conversation, for previous_response_id.",
                    inc.method, inc.path
                ))
            } else {
                Error::Unauthorized
            };
            respond_error(inc, shape, &e, &mut DebugCapture::off());
        }
        Endpoint::Unknown => {
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
            "workers": app.config.workers,
            "queue_size": app.config.queue_size,
            "queue_timeout_secs": app.config.queue_timeout.as_secs(),
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
