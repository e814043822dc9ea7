//! The IDE version the gateway presents, kept current: Kiro refuses client versions below a
//! cut-off it moves (`docs/kiro-wire.md#version-cut-off`), so a version compiled into the binary
//! goes stale. With `KIRO_IDE_VERSION=auto` (the default) the version is read from the IDE's
//! public update manifest at start-up and every 12 hours, and once more at once when Kiro
//! refuses the version; the last one found is cached in the state directory.
//!
//! Discovery never blocks start-up or a request it was not asked for by, and never lowers the
//! version: a failure keeps the last known one. Nothing here speaks to the inference hosts.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::ide_version::is_version;
pub use crate::config::ide_version::{
    IdeVersion, VersionMode, COMPILED_IDE_VERSION, DEFAULT_UPDATE_URL,
};
use crate::config::UpstreamSettings;

/// How often the manifest is read again.
pub const REDISCOVER_EVERY: Duration = Duration::from_secs(12 * 3600);
/// A manifest that has not answered within this is given up until the next round.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The cache file in the state directory.
const CACHE_FILE: &str = "ide-version";
/// A manifest is small; anything larger is not one.
const MAX_MANIFEST: u64 = 64 * 1024;

/// The `version:` of an electron-builder update manifest (`latest.yml`), quotes removed.
pub fn parse_manifest(text: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('\t'))
        .find_map(|l| l.strip_prefix("version:"))
        .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|v| is_version(v))
}

fn cache_path(config: &UpstreamSettings) -> PathBuf {
    config.state_dir.join(CACHE_FILE)
}

/// The version cached by an earlier run, taken when newer than the current one.
pub fn load_cached(config: &UpstreamSettings) {
    if config.ide_version.mode() != VersionMode::Auto {
        return;
    }
    if let Ok(text) = std::fs::read_to_string(cache_path(config)) {
        let v = text.trim();
        if config.ide_version.offer(v) {
            log::info!("IDE version {v} (cached from an earlier discovery)");
        }
    }
}

fn store_cached(path: &Path, version: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = crate::util::write_file_atomic(path, version.as_bytes()) {
        log::debug!("could not cache the IDE version in {}: {e}", path.display());
    }
}

/// Read the manifest once. `Ok(true)` when a newer version was found (and is now in use).
pub fn discover(config: &UpstreamSettings) -> Result<bool, String> {
    let agent = crate::net::agent(&config.net, None).map_err(|e| e.to_string())?;
    let resp = agent
        .get(&config.update_url)
        .config()
        .timeout_global(Some(FETCH_TIMEOUT))
        .build()
        .call()
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("the update manifest answered {status}"));
    }
    let mut text = String::new();
    resp.into_body()
        .into_reader()
        .take(MAX_MANIFEST)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let found = parse_manifest(&text)
        .ok_or_else(|| "the update manifest has no version line".to_string())?;
    if config.ide_version.offer(&found) {
        log::info!(
            "IDE version {found} (discovered from {})",
            config.update_url
        );
        store_cached(&cache_path(config), &found);
        return Ok(true);
    }
    log::debug!(
        "update manifest: {found}; keeping IDE version {}",
        config.ide_version
    );
    Ok(false)
}

/// At start-up and every 12 hours, on a thread of its own: the cached version, then the
/// manifest. A failure is logged once until discovery works again.
pub fn spawn(config: UpstreamSettings) {
    if config.ide_version.mode() != VersionMode::Auto {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("ide-version".into())
        .spawn(move || {
            load_cached(&config);
            let mut failing = false;
            loop {
                match discover(&config) {
                    Ok(_) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        log::warn!(
                            "IDE version discovery failed ({e}); keeping {}",
                            config.ide_version
                        );
                    }
                    Err(e) => log::debug!("IDE version discovery failed again: {e}"),
                }
                std::thread::sleep(REDISCOVER_EVERY);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_version_line_is_read_with_or_without_quotes() {
        let yml = "version: 1.2.4\nfiles:\n  - url: Kiro.exe\n    version: 9.9.9\npath: x\n";
        assert_eq!(parse_manifest(yml).as_deref(), Some("1.2.4"));
        assert_eq!(
            parse_manifest("version: '1.3.0'\n").as_deref(),
            Some("1.3.0")
        );
        assert_eq!(parse_manifest("version: latest\n"), None);
        assert_eq!(parse_manifest("<html>"), None);
    }

    #[test]
    fn discovery_only_raises_and_respects_the_floor_and_pins() {
        let v = IdeVersion::from_setting(None).unwrap();
        assert!(!v.offer("1.0.1"), "never lowered");
        assert!(v.offer("1.2.4"));
        assert_eq!(v.to_string(), "1.2.4");
        assert!(!v.offer("0.10.0"));
        let pinned = IdeVersion::from_setting(Some("1.1.71")).unwrap();
        assert!(!pinned.offer("9.0.0"));
        assert_eq!(pinned.get(), "1.1.71");
        let off = IdeVersion::from_setting(Some("off")).unwrap();
        assert!(!off.offer("9.0.0"));
        assert_eq!(off.get(), COMPILED_IDE_VERSION);
        assert!(IdeVersion::from_setting(Some("0.7.45")).is_err());
    }

    #[test]
    fn clones_share_the_version_and_the_refusal() {
        let a = IdeVersion::default();
        let b = a.clone();
        a.offer("2.0.0");
        assert_eq!(b.get(), "2.0.0");
        b.mark_refused("2.0.0");
        assert_eq!(a.refused().as_deref(), Some("2.0.0"));
        a.mark_accepted();
        assert_eq!(b.refused(), None);
    }
}
