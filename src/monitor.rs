//! The gateway's window on itself, at the server's edge: what is kept when a request ends (the
//! access log line, the metrics, the usage of its client key), and the two pages that show it —
//! `GET /metrics` for Prometheus and the status page at `GET /` for browsers.
//!
//! Both pages take the admin key (`METRICS_KEY`, else `PROXY_API_KEY`): as a bearer token, as
//! `x-api-key`, or as the password of HTTP Basic auth so that a browser can ask for it.

use std::io::Write;

use serde_json::Value;

use crate::access_log::LogFormat;

use crate::config::{ClientProfile, Config};
use crate::http::Incoming;
use crate::metrics::{self, AccountGauge, AccountState, Scrape};
use crate::pipeline::App;
use crate::status_page::{AccountView, StatusView};
use crate::util::now_unix_millis;

/// A request is done (answered, or given up): log it and count it. (Its key was charged when
/// Kiro's reply ended, in the pipeline.)
pub fn finish(app: &App, inc: &Incoming) {
    let m = metrics::global();
    let mut r = inc.record.clone();
    r.method = inc.method.clone();
    r.path = inc.path.clone();
    r.status = inc.status;
    r.bytes = inc.bytes;
    r.duration = inc.started.elapsed();
    r.model_requested = inc.model.clone();
    r.retries = m.take_request_retries();
    write_access_line(&r, app.config.log_format);
    m.finish(&r);
}

/// The access log's target: `LOG_LEVEL` above INFO silences it.
const ACCESS: &str = "kiro_gateway::access";

/// Text lines go through the logger (timestamp, level, target); JSON lines go to stderr as they
/// are, one object per line, so that a log shipper reads them without a prefix to strip.
fn write_access_line(r: &crate::access_log::RequestRecord, format: LogFormat) {
    match format {
        LogFormat::Text => log::info!(target: ACCESS, "{}", r.log_line(format)),
        LogFormat::Json if log::log_enabled!(target: ACCESS, log::Level::Info) => {
            let mut line = r.log_line(format).into_bytes();
            line.push(b'\n');
            let _ = std::io::stderr().lock().write_all(&line);
        }
        LogFormat::Json => {}
    }
}

/// Whether a browser asked for the root (the status page instead of the JSON greeting).
pub fn wants_html(inc: &Incoming) -> bool {
    inc.header("accept")
        .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
}

fn admin_authorized(cfg: &Config, inc: &Incoming) -> bool {
    let admin = cfg.metrics_key.as_deref().or(cfg.proxy_api_key.as_deref());
    crate::keys::admin_authorized(
        admin,
        cfg.keys_file.is_some(),
        inc.header("authorization"),
        inc.header("x-api-key"),
    )
}

fn refuse(inc: &mut Incoming, challenge: &str) {
    inc.respond_bytes(
        401,
        "text/plain; charset=utf-8",
        b"The gateway key is needed (METRICS_KEY, else PROXY_API_KEY).\n".to_vec(),
        &[("WWW-Authenticate", challenge.to_string())],
    );
}

/// `GET /metrics`.
pub fn metrics_page(app: &App, inc: &mut Incoming) {
    if !admin_authorized(&app.config, inc) {
        return refuse(inc, "Bearer realm=\"kiro-gateway\"");
    }
    let text = metrics::global().render(&scrape(app));
    inc.respond_bytes(
        200,
        metrics::exposition::CONTENT_TYPE,
        text.into_bytes(),
        &[("Cache-Control", "no-store".into())],
    );
}

/// `GET /` from a browser.
pub fn status_page(app: &App, inc: &mut Incoming) {
    if !admin_authorized(&app.config, inc) {
        return refuse(inc, "Basic realm=\"kiro-gateway\", charset=\"UTF-8\"");
    }
    let page = crate::status_page::render(&status_view(app));
    inc.respond_bytes(
        200,
        "text/html; charset=utf-8",
        page.into_bytes(),
        &[("Cache-Control", "no-store".into())],
    );
}

/// The client identity the gateway presents to Kiro, in short.
pub fn client_identity(cfg: &Config) -> String {
    match cfg.client_profile {
        ClientProfile::Cli => format!("kiro-cli {}", cfg.cli_version),
        ClientProfile::IdeRuntime => format!("Kiro IDE {}", cfg.ide_version.get()),
        ClientProfile::IdeLegacy => format!("Kiro IDE {} (legacy endpoint)", cfg.ide_version.get()),
    }
}

fn upstream(cfg: &Config) -> String {
    let region = crate::config::api_region(cfg.kiro_api_region.as_deref(), &cfg.kiro_region, None);
    let upstream = crate::config::UpstreamSettings::from_config(cfg);
    crate::kiro::identity::api_base(&upstream, cfg.client_profile, &region)
}

/// An account's state from its `/health` entry.
fn account_state(a: &Value) -> AccountState {
    AccountState::from_health(
        a["status"].as_str().unwrap_or(""),
        a["reason"].as_str().or(a["last_request_error"].as_str()),
    )
}

fn scrape(app: &App) -> Scrape {
    let accounts = app
        .pool
        .status()
        .iter()
        .map(|a| AccountGauge {
            name: a["name"].as_str().unwrap_or("").to_string(),
            state: account_state(a),
            credits_used: a
                .pointer("/usage_limits/credits_used")
                .and_then(Value::as_f64),
            credits_limit: a
                .pointer("/usage_limits/credits_limit")
                .and_then(Value::as_f64),
        })
        .collect();
    Scrape {
        client_identity: client_identity(&app.config),
        accounts,
    }
}

fn status_view(app: &App) -> StatusView {
    let m = metrics::global();
    let now = now_unix_millis();
    let accounts = app
        .pool
        .status()
        .iter()
        .map(|a| {
            let name = a["name"].as_str().unwrap_or("").to_string();
            let today = m.recent.account_today(&name, now);
            AccountView {
                login: a["kind"].as_str().unwrap_or("").to_string(),
                expires_in: a["expires_in"].as_i64(),
                state: account_state(a).as_str().to_string(),
                last_error: a["last_request_error"]
                    .as_str()
                    .or(a["last_error"].as_str())
                    .map(str::to_string),
                requests_today: today.requests,
                credits_today: today.credits,
                usage_limits: usage_limits(a),
                name,
            }
        })
        .collect();
    StatusView {
        version: crate::VERSION.to_string(),
        uptime_secs: m.uptime_secs(),
        now_ms: now,
        client_identity: client_identity(&app.config),
        upstream: upstream(&app.config),
        accounts,
        keys_today: app.usage.today(now),
        models: app.models.list_ids(),
        requests: m.recent.requests(),
        events: m.recent.events(now),
    }
}

/// Kiro's usage figures of an account, worded, when `/health` has them.
fn usage_limits(a: &Value) -> Option<String> {
    let l = a.get("usage_limits")?;
    let used = l["credits_used"].as_f64()?;
    let mut s = match l["credits_limit"].as_f64() {
        Some(limit) => format!(
            "{} of {} credits",
            crate::access_log::trim_float(used),
            crate::access_log::trim_float(limit)
        ),
        None => format!("{} credits used", crate::access_log::trim_float(used)),
    };
    if let Some(reset) = l["resets_at"].as_str() {
        // Plans renew at midnight UTC: the date says it all.
        let reset = reset.strip_suffix("T00:00:00Z").unwrap_or(reset);
        s.push_str(&format!(", resets {reset}"));
    }
    Some(s)
}
