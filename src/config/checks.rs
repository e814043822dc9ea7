//! The checks that refuse a configuration before the gateway starts, each with a message that
//! names what to set: an exposed listener without a key, a placeholder profile ARN, a client
//! version Kiro no longer accepts.

use super::{Config, EXAMPLE_PROXY_KEY};
use crate::error::Error;

/// Refuse to listen on a non-loopback address without a real key (never open by accident).
pub(super) fn check_exposure(c: &Config) -> Result<(), Error> {
    let weak = match c.proxy_api_key.as_deref() {
        None if c.keys_file.is_some() => None,
        None => Some("no PROXY_API_KEY is set"),
        Some(EXAMPLE_PROXY_KEY) => Some("PROXY_API_KEY is the example key from the README"),
        Some(_) => None,
    };
    match weak {
        Some(why) if !c.is_loopback() => Err(Error::Config(format!(
            "refusing to listen on {} because {why}: set PROXY_API_KEY to a secret of your own, or listen on loopback only with --host 127.0.0.1",
            c.host
        ))),
        _ => Ok(()),
    }
}

/// Refuse placeholder or malformed profile ARNs locally, with a message saying what to set.
pub fn check_profile_arn(arn: &str, source: &str) -> Result<(), Error> {
    let parts: Vec<&str> = arn.split(':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "codewhisperer"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("profile/")
        && parts[5].len() > "profile/".len();
    let placeholder = arn.contains("AAAACCCCXXXX")
        || arn.contains("...")
        || arn.contains(":000000000000:")
        || arn.contains('<');
    if !well_formed || placeholder {
        return Err(Error::Config(format!(
            "{source} is not a usable profile ARN (expected arn:aws:codewhisperer:<region>:<12-digit account>:profile/<id>); copy it from the Kiro IDE credentials file, or leave it unset"
        )));
    }
    Ok(())
}

/// Compare dotted version strings numerically (`1.0.437` > `0.11.133`).
pub fn version_at_least(version: &str, minimum: &str) -> bool {
    let parse = |s: &str| -> Option<Vec<u64>> {
        s.split('.')
            .map(|p| p.trim().parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()
    };
    match (parse(version), parse(minimum)) {
        (Some(v), Some(m)) => {
            for i in 0..v.len().max(m.len()) {
                let a = v.get(i).copied().unwrap_or(0);
                let b = m.get(i).copied().unwrap_or(0);
                if a != b {
                    return a > b;
                }
            }
            true
        }
        _ => false,
    }
}

pub(super) fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}
