//! The status page a browser gets at `GET /`: one self-contained HTML document (inline CSS, no
//! external resource, no script; it reloads itself every 15 s with a `meta` refresh) showing the
//! gateway, its accounts, usage per client key today, the models, the last requests and the
//! retries and errors of the last hour.
//!
//! Rendering only: the caller gathers a [`StatusView`]. Every value is HTML-escaped; nothing on
//! the page is content (no prompt, no answer) or a secret.

use std::fmt::Write;

use crate::access_log::{trim_float, RequestRecord};
use crate::metrics::recent::Event;
use crate::usage::DayTotals;
use crate::util::{format_iso8601, IsoStyle};

/// Seconds between the page's reloads.
const REFRESH_SECS: u32 = 15;

/// Everything the page shows.
#[derive(Debug, Clone, Default)]
pub struct StatusView {
    pub version: String,
    pub uptime_secs: u64,
    pub now_ms: u64,
    /// The client identity presented to Kiro.
    pub client_identity: String,
    /// Where requests go (the Kiro endpoint and region).
    pub upstream: String,
    pub accounts: Vec<AccountView>,
    /// Usage per client key today.
    pub keys_today: Vec<(String, DayTotals)>,
    pub models: Vec<String>,
    /// Newest first.
    pub requests: Vec<RequestRecord>,
    /// Newest first.
    pub events: Vec<Event>,
}

/// One account as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct AccountView {
    pub name: String,
    /// The login kind (`social`, `idc`, `api_key`, …).
    pub login: String,
    /// Seconds until the access token expires (negative: expired), when known.
    pub expires_in: Option<i64>,
    /// `active`, `cooling_down`, `quota_spent`, `suspended`, `login_revoked`, `disabled`.
    pub state: String,
    pub last_error: Option<String>,
    pub requests_today: u64,
    pub credits_today: f64,
    /// Kiro's own usage figures, already worded (e.g. `120 of 1000 credits, resets 2026-12-31`).
    pub usage_limits: Option<String>,
}

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `3d 4h`, `2h 5m`, `42s`.
fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn millis(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms >= 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

fn clock(unix_ms: u64) -> String {
    let t = format_iso8601(unix_ms as i64, IsoStyle::SecondsZ);
    t.get(11..19).unwrap_or(&t).to_string()
}

const STYLE: &str = "
:root{color-scheme:light dark;--bg:#fafafa;--fg:#1d1d1f;--mute:#6e6e73;--line:#d9d9de;--card:#fff;
--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e}
@media (prefers-color-scheme:dark){:root{--bg:#16171a;--fg:#e6e6e6;--mute:#9a9aa0;--line:#33343a;
--card:#1f2024;--ok:#3fb950;--warn:#d29922;--bad:#f85149}}
*{box-sizing:border-box}
body{margin:0;padding:24px;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:28px 0 8px}
.sub{color:var(--mute);margin-bottom:16px}
.facts{display:flex;flex-wrap:wrap;gap:12px}
.fact{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 12px;min-width:140px}
.fact b{display:block;font-size:12px;color:var(--mute);font-weight:500}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:8px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
th{font-size:12px;color:var(--mute);font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:0}
.active,.s2{color:var(--ok)}.cooling_down,.s4{color:var(--warn)}
.quota_spent,.suspended,.login_revoked,.s5{color:var(--bad)}.disabled{color:var(--mute)}
.empty{color:var(--mute);padding:8px 0}
.models{display:flex;flex-wrap:wrap;gap:6px}.models span{background:var(--card);border:1px solid var(--line);
border-radius:6px;padding:2px 8px;font-size:13px}
.wrap{white-space:normal}
";

/// The whole page.
pub fn render(v: &StatusView) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>kiro-gateway status</title><style>{STYLE}</style></head><body>\
         <h1>kiro-gateway</h1><div class=\"sub\">Status at {} UTC · refreshes every {REFRESH_SECS} s</div>",
        escape(&format_iso8601(v.now_ms as i64, IsoStyle::SecondsZ).replace(['T', 'Z'], " ")),
    );
    h.push_str("<div class=\"facts\">");
    for (label, value) in [
        ("Version", v.version.clone()),
        ("Uptime", human_duration(v.uptime_secs)),
        ("Client identity", v.client_identity.clone()),
        ("Upstream", v.upstream.clone()),
        ("Accounts", v.accounts.len().to_string()),
        ("Models", v.models.len().to_string()),
    ] {
        let _ = write!(
            h,
            "<div class=\"fact\"><b>{}</b>{}</div>",
            escape(label),
            escape(&value)
        );
    }
    h.push_str("</div>");
    accounts(&mut h, v);
    keys(&mut h, v);
    requests(&mut h, v);
    events(&mut h, v);
    h.push_str("<h2>Models</h2><div class=\"models\">");
    for m in &v.models {
        let _ = write!(h, "<span>{}</span>", escape(m));
    }
    if v.models.is_empty() {
        h.push_str("<div class=\"empty\">No model list yet.</div>");
    }
    h.push_str("</div></body></html>\n");
    h
}

fn table_head(h: &mut String, title: &str, columns: &[&str]) {
    let _ = write!(h, "<h2>{}</h2><table><thead><tr>", escape(title));
    for c in columns {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr></thead><tbody>");
}

fn empty_row(h: &mut String, columns: usize, text: &str) {
    let _ = write!(
        h,
        "<tr><td class=\"empty\" colspan=\"{columns}\">{}</td></tr>",
        escape(text)
    );
}

fn accounts(h: &mut String, v: &StatusView) {
    let cols = [
        "Account",
        "Login",
        "Token expires",
        "State",
        "Requests today",
        "Credits today",
        "Kiro usage",
        "Last error",
    ];
    table_head(h, "Accounts", &cols);
    for a in &v.accounts {
        let expiry = match a.expires_in {
            Some(s) if s < 0 => "expired".to_string(),
            Some(s) => format!("in {}", human_duration(s as u64)),
            None => "—".into(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td class=\"wrap\">{}</td></tr>",
            escape(&a.name),
            escape(&a.login),
            escape(&expiry),
            escape(&a.state),
            escape(&a.state.replace('_', " ")),
            a.requests_today,
            escape(&trim_float(a.credits_today)),
            escape(a.usage_limits.as_deref().unwrap_or("—")),
            escape(a.last_error.as_deref().unwrap_or("—")),
        );
    }
    if v.accounts.is_empty() {
        empty_row(h, cols.len(), "No account.");
    }
    h.push_str("</tbody></table>");
}

fn keys(h: &mut String, v: &StatusView) {
    let cols = [
        "Client key",
        "Requests",
        "Tokens in",
        "Tokens out",
        "Credits",
    ];
    table_head(h, "Usage per client key today (UTC)", &cols);
    for (name, t) in &v.keys_today {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            escape(name),
            t.requests,
            t.tokens_in,
            t.tokens_out,
            escape(&trim_float(t.credits)),
        );
    }
    if v.keys_today.is_empty() {
        empty_row(h, cols.len(), "No request today.");
    }
    h.push_str("</tbody></table>");
}

fn requests(h: &mut String, v: &StatusView) {
    let cols = [
        "Time",
        "Key",
        "API",
        "Model",
        "Account",
        "Status",
        "Duration",
        "TTFT",
        "Tokens in/out",
        "Credits",
        "Retries",
    ];
    table_head(h, "Last requests", &cols);
    for r in &v.requests {
        let _ =
            write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"s{}\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{} / {}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            clock(r.unix_ms),
            escape(&r.key),
            escape(r.api),
            escape(&r.model_shown()),
            escape(if r.account.is_empty() { "—" } else { &r.account }),
            r.status / 100,
            r.status,
            millis(r.duration),
            r.ttft.map(millis).unwrap_or_else(|| "—".into()),
            r.tokens_in,
            r.tokens_out,
            escape(&trim_float(r.credits)),
            r.retries,
        );
    }
    if v.requests.is_empty() {
        empty_row(h, cols.len(), "No request yet.");
    }
    h.push_str("</tbody></table>");
}

fn events(h: &mut String, v: &StatusView) {
    let cols = ["Time", "Kind", "Account", "Detail"];
    table_head(h, "Retries and errors (last hour)", &cols);
    for e in &v.events {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"wrap\">{}</td></tr>",
            clock(e.unix_ms),
            escape(e.kind),
            escape(if e.account.is_empty() {
                "—"
            } else {
                &e.account
            }),
            escape(&e.detail),
        );
    }
    if v.events.is_empty() {
        empty_row(h, cols.len(), "Nothing in the last hour.");
    }
    h.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn view() -> StatusView {
        StatusView {
            version: "0.1.0".into(),
            uptime_secs: 3725,
            now_ms: 1_796_385_600_000,
            client_identity: "KiroIDE 1.1.70".into(),
            upstream: "https://runtime.us-east-1.kiro.dev".into(),
            accounts: vec![AccountView {
                name: "work".into(),
                login: "social".into(),
                expires_in: Some(1800),
                state: "cooling_down".into(),
                last_error: Some("Kiro said <429> & stop".into()),
                requests_today: 12,
                credits_today: 3.5,
                usage_limits: None,
            }],
            keys_today: vec![(
                "alice".into(),
                DayTotals {
                    requests: 4,
                    tokens_in: 1000,
                    tokens_out: 200,
                    credits: 1.25,
                },
            )],
            models: vec!["claude-sonnet-4.5".into()],
            requests: vec![RequestRecord {
                unix_ms: 1_796_385_590_000,
                route: "/v1/messages",
                api: "anthropic",
                key: "alice".into(),
                model_requested: "<script>alert(1)</script>".into(),
                status: 200,
                duration: Duration::from_millis(2500),
                ttft: Some(Duration::from_millis(310)),
                ..RequestRecord::default()
            }],
            events: vec![Event {
                unix_ms: 1_796_385_595_000,
                kind: "retry",
                account: "work".into(),
                detail: "throttle".into(),
            }],
        }
    }

    #[test]
    fn page_shows_the_gateway_accounts_requests_and_events() {
        let page = render(&view());
        for needle in [
            "KiroIDE 1.1.70",
            "1h 2m",
            "runtime.us-east-1.kiro.dev",
            "cooling down",
            "in 30m 0s",
            "alice",
            "1.25",
            "claude-sonnet-4.5",
            "11:59:50",
            "310 ms",
            "throttle",
        ] {
            assert!(page.contains(needle), "{needle} missing");
        }
    }

    #[test]
    fn page_escapes_everything_and_loads_nothing_from_outside() {
        let page = render(&view());
        assert!(!page.contains("<script"), "unescaped script");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("Kiro said &lt;429&gt; &amp; stop"));
        assert!(!page.contains("src="));
        assert!(!page.contains("href="));
        assert!(!page.contains("@import"));
    }

    #[test]
    fn empty_page_says_so() {
        let page = render(&StatusView::default());
        assert!(page.contains("No account."));
        assert!(page.contains("No request yet."));
        assert!(page.contains("Nothing in the last hour."));
    }
}
