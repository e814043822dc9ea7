//! Small helpers shared by several modules: SHA-256 (`ring`), constant-time comparison, random
//! ids (`getrandom`), UTC timestamps in ISO-8601, percent-encoding, atomic file writes.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// Compare two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Percent-encode a URL query value or form component (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 64 random bits from the operating system (`getrandom`). Should the system source fail, which
/// Linux does not do once booted, a SipHash of a counter and the clock keyed by the process's
/// random state still gives distinct ids.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// `n` random lowercase hex characters.
pub fn random_hex(n: usize) -> String {
    let mut s = String::with_capacity(n + 16);
    while s.len() < n {
        s.push_str(&format!("{:016x}", random_u64()));
    }
    s.truncate(n);
    s
}

/// A random UUID version 4, hyphenated.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&random_u64().to_le_bytes());
    b[8..].copy_from_slice(&random_u64().to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ISO-8601 by hand (size): `time`'s parsing feature would add more to the binary than these lines.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The (year, month, day) of a count of days since 1970-01-01 (proleptic Gregorian).
pub fn civil_date(days: i64) -> (i64, i64, i64) {
    civil_from_days(days)
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// How an ISO-8601 timestamp was written, so a rewrite keeps the source's style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsoStyle {
    /// `2025-01-12T23:00:00.000Z` (Kiro IDE, AWS SSO cache)
    MillisZ,
    /// `2025-01-12T23:00:00.123456Z` (kiro-cli)
    MicrosZ,
    /// `2025-01-12T23:00:00.123456789Z`
    NanosZ,
    /// `2025-01-12T23:00:00Z`
    SecondsZ,
    /// `2026-01-01T12:00:00+00:00` or with microseconds (Python `isoformat`)
    Offset { micros: bool },
}

/// Parse an ISO-8601 / RFC 3339 timestamp into Unix milliseconds and the style it was written in.
/// A timestamp without an offset is taken as UTC.
pub fn parse_iso8601(s: &str) -> Option<(i64, IsoStyle)> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_ms = 0i64;
    let mut frac_digits = 0usize;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        frac_digits = digits.len();
        let padded = format!("{digits:0<3}");
        frac_ms = padded.get(0..3)?.parse().ok()?;
        rest = &r[digits.len()..];
    }
    let (offset_secs, style) = if rest.is_empty() || rest == "Z" || rest == "z" {
        let style = match frac_digits {
            0 => IsoStyle::SecondsZ,
            1..=3 => IsoStyle::MillisZ,
            4..=6 => IsoStyle::MicrosZ,
            _ => IsoStyle::NanosZ,
        };
        (0i64, style)
    } else {
        let sign = match rest.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let off = rest[1..].replace(':', "");
        let oh: i64 = off.get(0..2)?.parse().ok()?;
        let om: i64 = off.get(2..4).unwrap_or("00").parse().ok()?;
        (
            sign * (oh * 3600 + om * 60),
            IsoStyle::Offset {
                micros: frac_digits > 0,
            },
        )
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86400 + h * 3600 + mi * 60 + se - offset_secs;
    Some((secs * 1000 + frac_ms, style))
}

/// Format Unix milliseconds as UTC ISO-8601 in the given style.
pub fn format_iso8601(millis: i64, style: IsoStyle) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let sod = secs.rem_euclid(86400);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    match style {
        IsoStyle::MillisZ => format!("{base}.{ms:03}Z"),
        IsoStyle::MicrosZ => format!("{base}.{:06}Z", ms * 1000),
        IsoStyle::NanosZ => format!("{base}.{:09}Z", ms * 1_000_000),
        IsoStyle::SecondsZ => format!("{base}Z"),
        IsoStyle::Offset { micros: true } => format!("{base}.{:06}+00:00", ms * 1000),
        IsoStyle::Offset { micros: false } => format!("{base}+00:00"),
    }
}

/// Replace `target` with `bytes` so that a reader sees the old or the new file, never a part: a
/// temporary file in the same directory (owner-only while written), fsync, rename. An existing
/// file keeps its permissions and owner; a new one is owner-only.
pub fn write_file_atomic(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let meta = match fs::metadata(target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "credentials".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        random_hex(8)
    ));
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            // Owner-only while the secrets are written; the file's own mode is set below.
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        if let Some(meta) = &meta {
            fs::set_permissions(&tmp, meta.permissions())?;
            #[cfg(unix)]
            {
                // Keep the owner when we may (running as root for another user); else a no-op.
                use std::os::unix::fs::MetadataExt;
                let _ = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()));
            }
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(&dir) {
        // Make the rename itself durable.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn sha256_matches_known_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(
            sha256_hex(&long),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid_v4(), uuid_v4());
    }

    #[test]
    fn iso8601_round_trips_each_style() {
        for s in [
            "2025-01-12T23:00:00.000Z",
            "2025-01-12T23:00:00Z",
            "2025-01-12T23:00:00.123000Z",
            "2025-01-12T23:00:00.123000000Z",
            "2026-01-01T12:00:00+00:00",
            "2026-01-01T12:00:00.123000+00:00",
        ] {
            let (ms, style) = parse_iso8601(s).unwrap();
            assert_eq!(format_iso8601(ms, style), s);
        }
        let (a, _) = parse_iso8601("2025-01-12T23:00:00Z").unwrap();
        assert_eq!(a, 1736722800000);
        let (b, _) = parse_iso8601("2025-01-13T01:00:00+02:00").unwrap();
        assert_eq!(a, b);
        assert!(parse_iso8601("yesterday").is_none());
    }
}
