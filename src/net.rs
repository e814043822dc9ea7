//! The outbound HTTP agent: TLS (rustls, webpki roots compiled in), proxy, timeouts. Used by the
//! Kiro client and by token refresh.

use std::time::Duration;

use crate::config::NetSettings;
use crate::error::Error;

/// Build an agent. `proxy` overrides `VPN_PROXY_URL` (`Some("direct")` disables any proxy).
pub fn agent(config: &NetSettings, proxy: Option<&str>) -> Result<ureq::Agent, Error> {
    let proxy_url = match proxy {
        Some("direct") => None,
        Some(p) => Some(p.to_string()),
        None => config.vpn_proxy_url.clone(),
    };
    let proxy = match proxy_url {
        None => None,
        Some(p) => {
            let p = if p.contains("://") {
                p
            } else {
                format!("http://{p}")
            };
            Some(ureq::Proxy::new(&p).map_err(|e| {
                Error::Config(format!("VPN_PROXY_URL is not a valid proxy URL: {e}"))
            })?)
        }
    };
    let cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(proxy)
        .timeout_connect(Some(config.connect_timeout))
        .timeout_recv_response(Some(config.streaming_read_timeout))
        .timeout_recv_body(Some(Duration::from_secs(3600)))
        // A reply Kiro stops feeding must not hold a worker and a socket for the hour above;
        // inference calls ask for a shorter per-read timeout of their own (`kiro::client`).
        .timeout_per_read(Some(config.streaming_read_timeout))
        .max_idle_connections_per_host(32)
        // Kiro drops idle connections after a few minutes (`docs/kiro-wire.md#connections`).
        .max_idle_age(config.upstream_idle)
        // ureq's default buffers are 128 KiB each way, zero-filled on a connection's first use:
        // a quarter MiB of memory for every open stream and pooled connection. A response head
        // must fit in the input buffer: Kiro's and AWS's are under 2 KiB, and 8 KiB is the limit
        // most proxies keep too (nginx's proxy_buffer_size). The output buffer holds the longest
        // request header line (the bearer token). Frames and request bodies go in pieces.
        .input_buffer_size(8 * 1024)
        .output_buffer_size(8 * 1024)
        .max_response_header_size(8 * 1024)
        .user_agent("")
        .build();
    Ok(ureq::Agent::new_with_config(cfg))
}

/// Check that a proxy URL is one ureq can use.
pub fn check_proxy(url: &str) -> Result<(), Error> {
    let p = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    ureq::Proxy::new(&p)
        .map(|_| ())
        .map_err(|e| Error::Config(format!("invalid proxy URL: {e}")))
}
