//! The registry as `GET /metrics` shows it: every family declared once, then its samples, in a
//! fixed order. Counting lives in the parent module; this file only reads.

use std::sync::atomic::Ordering;

use super::exposition::{Exposition, Kind};
use super::{AccountState, Metrics, RetryReason, Scrape};

impl Metrics {
    /// The exposition for `GET /metrics`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut e = Exposition::default();
        self.render_build(&mut e, scrape);
        self.render_requests(&mut e);
        self.render_upstream(&mut e);
        self.render_server(&mut e);
        render_accounts(&mut e, scrape);
        e.finish()
    }

    fn render_build(&self, e: &mut Exposition, scrape: &Scrape) {
        e.family(
            "kiro_gateway_build_info",
            Kind::Gauge,
            "Always 1: the gateway's version and the client identity it presents to Kiro.",
        );
        let identity = if scrape.client_identity.is_empty() {
            self.client_identity()
        } else {
            scrape.client_identity.clone()
        };
        e.sample(
            "kiro_gateway_build_info",
            &[("version", crate::VERSION), ("client_identity", &identity)],
            1.0,
        );
        e.family(
            "kiro_gateway_start_time_seconds",
            Kind::Gauge,
            "When the gateway started, in Unix seconds.",
        );
        e.sample(
            "kiro_gateway_start_time_seconds",
            &[],
            self.started_unix as f64,
        );
    }

    fn render_requests(&self, e: &mut Exposition) {
        e.family(
            "kiro_gateway_requests_total",
            Kind::Counter,
            "Requests answered, by route, client API, model served and HTTP status.",
        );
        for ((route, api, model, status), n) in self.requests.sorted() {
            e.sample(
                "kiro_gateway_requests_total",
                &[
                    ("route", route),
                    ("api", api),
                    ("model", &model),
                    ("status", &status.to_string()),
                ],
                n.load(Ordering::Relaxed) as f64,
            );
        }
        let latency = self.latency.sorted();
        e.family(
            "kiro_gateway_request_duration_seconds",
            Kind::Histogram,
            "Time from a request's arrival to the end of its answer.",
        );
        for ((api, model), s) in &latency {
            let labels = [("api", *api), ("model", model.as_str())];
            e.histogram(
                "kiro_gateway_request_duration_seconds",
                &labels,
                &s.duration,
            );
        }
        e.family(
            "kiro_gateway_time_to_first_token_seconds",
            Kind::Histogram,
            "Time from a streamed request's arrival to the first content sent to the client.",
        );
        for ((api, model), s) in &latency {
            let labels = [("api", *api), ("model", model.as_str())];
            e.histogram("kiro_gateway_time_to_first_token_seconds", &labels, &s.ttft);
        }
        let usage = self.usage.sorted();
        for (name, help) in [
            (
                "kiro_gateway_input_tokens_total",
                "Input tokens, by model, account and client key.",
            ),
            (
                "kiro_gateway_output_tokens_total",
                "Output tokens, by model, account and client key.",
            ),
            (
                "kiro_gateway_credits_total",
                "Kiro credits spent, by model, account and client key.",
            ),
        ] {
            e.family(name, Kind::Counter, help);
            for ((model, account, key), u) in &usage {
                let value = match name {
                    "kiro_gateway_input_tokens_total" => u.tokens_in.load(Ordering::Relaxed) as f64,
                    "kiro_gateway_output_tokens_total" => {
                        u.tokens_out.load(Ordering::Relaxed) as f64
                    }
                    _ => u.credits.get(),
                };
                let labels = [
                    ("model", model.as_str()),
                    ("account", account),
                    ("key", key),
                ];
                e.sample(name, &labels, value);
            }
        }
    }

    fn render_upstream(&self, e: &mut Exposition) {
        e.family(
            "kiro_gateway_upstream_attempts_total",
            Kind::Counter,
            "Calls made to Kiro, retries included.",
        );
        e.sample(
            "kiro_gateway_upstream_attempts_total",
            &[],
            self.attempts.load(Ordering::Relaxed) as f64,
        );
        e.family(
            "kiro_gateway_upstream_retries_total",
            Kind::Counter,
            "Kiro calls retried, by reason.",
        );
        for (reason, n) in RetryReason::ALL.iter().zip(&self.retries) {
            e.sample(
                "kiro_gateway_upstream_retries_total",
                &[("reason", reason.as_str())],
                n.load(Ordering::Relaxed) as f64,
            );
        }
        e.family(
            "kiro_gateway_account_failovers_total",
            Kind::Counter,
            "Requests moved from this account to another.",
        );
        for (account, n) in self.failovers.sorted() {
            e.sample(
                "kiro_gateway_account_failovers_total",
                &[("account", &account)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
        e.family(
            "kiro_gateway_token_refreshes_total",
            Kind::Counter,
            "Access token refreshes, by account and outcome.",
        );
        for ((account, outcome), n) in self.refreshes.sorted() {
            e.sample(
                "kiro_gateway_token_refreshes_total",
                &[("account", &account), ("outcome", outcome)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
    }

    fn render_server(&self, e: &mut Exposition) {
        let gauges: [(&str, &str, f64); 4] = [
            (
                "kiro_gateway_streams_open",
                "Streamed answers being sent now.",
                self.streams_open.load(Ordering::Relaxed).max(0) as f64,
            ),
            (
                "kiro_gateway_workers",
                "Worker threads in the pool.",
                self.workers.load(Ordering::Relaxed) as f64,
            ),
            (
                "kiro_gateway_workers_busy",
                "Worker threads serving a request now.",
                self.workers_busy.load(Ordering::Relaxed).max(0) as f64,
            ),
            (
                "kiro_gateway_queue_depth",
                "Requests waiting for a worker.",
                self.queue_depth.load(Ordering::Relaxed).max(0) as f64,
            ),
        ];
        for (name, help, value) in gauges {
            e.family(name, Kind::Gauge, help);
            e.sample(name, &[], value);
        }
        e.family(
            "kiro_gateway_overload_refusals_total",
            Kind::Counter,
            "Requests refused with 503 because every worker was busy and the queue was full.",
        );
        e.sample(
            "kiro_gateway_overload_refusals_total",
            &[],
            self.overload_refusals.load(Ordering::Relaxed) as f64,
        );
    }
}

fn render_accounts(e: &mut Exposition, scrape: &Scrape) {
    e.family(
        "kiro_gateway_account_state",
        Kind::Gauge,
        "1 for each account's current state, 0 for the others.",
    );
    for a in &scrape.accounts {
        for s in AccountState::ALL {
            let v = if s == a.state { 1.0 } else { 0.0 };
            e.sample(
                "kiro_gateway_account_state",
                &[("account", &a.name), ("state", s.as_str())],
                v,
            );
        }
    }
    e.family(
        "kiro_gateway_account_credits_used",
        Kind::Gauge,
        "Credits used in the plan period, as Kiro reports them (when it does).",
    );
    for a in &scrape.accounts {
        if let Some(v) = a.credits_used {
            e.sample(
                "kiro_gateway_account_credits_used",
                &[("account", &a.name)],
                v,
            );
        }
    }
    e.family(
        "kiro_gateway_account_credits_limit",
        Kind::Gauge,
        "Credits in the plan period, as Kiro reports them (when it does).",
    );
    for a in &scrape.accounts {
        if let Some(v) = a.credits_limit {
            e.sample(
                "kiro_gateway_account_credits_limit",
                &[("account", &a.name)],
                v,
            );
        }
    }
}
