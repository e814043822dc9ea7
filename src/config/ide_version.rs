//! The IDE version the gateway presents (`KIRO_IDE_VERSION`): a setting that version discovery
//! (`kiro::discovery`) may raise while the gateway runs, so it is one shared cell that every
//! clone of the settings sees.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use super::{version_at_least, MIN_IDE_VERSION};

/// The IDE version compiled in: what peers sent in late 2026 (`docs/kiro-wire.md#identity`).
pub const COMPILED_IDE_VERSION: &str = "1.1.70";
/// The IDE's public update manifest (electron-builder style YAML with a `version:` line).
pub const DEFAULT_UPDATE_URL: &str = "https://prod.download.desktop.kiro.dev/stable/latest.yml";
/// Where the IDE version comes from (`KIRO_IDE_VERSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMode {
    /// `auto` (default): discovered, never below the compiled default or the floor.
    Auto,
    /// A version the user set: used as is, never replaced.
    Pinned,
    /// `off`: the compiled default, never replaced.
    Off,
}

#[derive(Debug)]
struct Cell {
    mode: VersionMode,
    current: RwLock<String>,
    /// The version Kiro refused last, until a request is served again.
    refused: Mutex<Option<String>>,
}

/// The IDE version in use, shared by every clone (the configuration is cloned into each account;
/// all of them see a discovered version at once).
#[derive(Debug, Clone)]
pub struct IdeVersion(Arc<Cell>);

impl IdeVersion {
    pub fn new(mode: VersionMode, version: &str) -> IdeVersion {
        IdeVersion(Arc::new(Cell {
            mode,
            current: RwLock::new(version.to_string()),
            refused: Mutex::new(None),
        }))
    }

    /// Parse `KIRO_IDE_VERSION`: `auto` (or unset), `off`, or a version to pin.
    pub fn from_setting(value: Option<&str>) -> Result<IdeVersion, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(IdeVersion::new(VersionMode::Auto, COMPILED_IDE_VERSION)),
            Some(v) if v.eq_ignore_ascii_case("auto") => {
                Ok(IdeVersion::new(VersionMode::Auto, COMPILED_IDE_VERSION))
            }
            Some(v) if v.eq_ignore_ascii_case("off") => {
                Ok(IdeVersion::new(VersionMode::Off, COMPILED_IDE_VERSION))
            }
            Some(v) if version_at_least(v, MIN_IDE_VERSION) => {
                Ok(IdeVersion::new(VersionMode::Pinned, v))
            }
            Some(v) => Err(format!(
                "KIRO_IDE_VERSION={v} is refused: Kiro stopped accepting IDE versions below {MIN_IDE_VERSION} on 2026-11-09 (use auto, off or a newer version)"
            )),
        }
    }

    /// The version to send now.
    pub fn get(&self) -> String {
        match self.0.current.read() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn mode(&self) -> VersionMode {
        self.0.mode
    }

    /// Take `found` when discovery is on and it is newer than the current version (and a valid
    /// version above the floor). Whether the version changed.
    pub fn offer(&self, found: &str) -> bool {
        if self.0.mode != VersionMode::Auto || !is_version(found) {
            return false;
        }
        if !version_at_least(found, MIN_IDE_VERSION) {
            return false;
        }
        let mut cur = match self.0.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if version_at_least(&cur, found) {
            return false;
        }
        *cur = found.to_string();
        true
    }

    /// Kiro refused `sent`: remembered for `/health` until a request is served again.
    pub fn mark_refused(&self, sent: &str) {
        *self.refused_lock() = Some(sent.to_string());
    }

    /// A request was served: the refusal, if any, is over.
    pub fn mark_accepted(&self) {
        let mut r = self.refused_lock();
        if r.is_some() {
            *r = None;
        }
    }

    /// The version Kiro refused last, while no request has been served since.
    pub fn refused(&self) -> Option<String> {
        self.refused_lock().clone()
    }

    fn refused_lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        match self.0.refused.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

impl Default for IdeVersion {
    fn default() -> IdeVersion {
        IdeVersion::new(VersionMode::Auto, COMPILED_IDE_VERSION)
    }
}

impl fmt::Display for IdeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.get())
    }
}

/// Digits and dots only, starting and ending with a digit (`1.2.4`).
pub(crate) fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}
