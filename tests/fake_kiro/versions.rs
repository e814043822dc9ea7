//! The fake's client-version rules: Kiro's cut-off (inference calls whose User-Agent carries a
//! `KiroIDE-<version>-` below the floor get the 400 "no longer supported"), and the IDE's public
//! update manifest (`GET /stable/latest.yml`, electron-builder style YAML).

use serde_json::json;

use super::{Recorded, Reply};

/// Kiro's words when it refuses a client version.
pub const VERSION_REFUSED: &str =
    "This version of Kiro is no longer supported. Please update to the latest version of Kiro to continue.";

/// The path of the update manifest the fake serves.
pub const MANIFEST_PATH: &str = "/stable/latest.yml";

/// The manifest's version until a test sets another: the gateway's compiled default, so that
/// discovery changes nothing unless a test asks for it.
pub const DEFAULT_MANIFEST_VERSION: &str = "1.1.70";

#[derive(Debug)]
pub struct Versions {
    /// Inference calls from IDE versions below this are refused (None: every version accepted).
    pub floor: Option<String>,
    /// The `version:` of the manifest (None: the manifest answers 404; default [`DEFAULT_MANIFEST_VERSION`]).
    pub manifest: Option<String>,
    /// Manifest requests so far.
    pub manifest_count: usize,
    /// The `KiroIDE-<version>` of every inference call, in order.
    pub seen: Vec<String>,
}

impl Default for Versions {
    fn default() -> Versions {
        Versions {
            floor: None,
            manifest: Some(DEFAULT_MANIFEST_VERSION.into()),
            manifest_count: 0,
            seen: Vec::new(),
        }
    }
}

impl Versions {
    /// The refusal for this call, when its version is below the floor.
    pub fn refusal(&mut self, rec: &Recorded) -> Option<Reply> {
        let version = ide_version(rec)?;
        self.seen.push(version.clone());
        let floor = self.floor.as_deref()?;
        if at_least(&version, floor) {
            return None;
        }
        Some(Reply::status(400, json!({ "message": VERSION_REFUSED })))
    }

    /// The manifest reply.
    pub fn manifest_reply(&mut self) -> Reply {
        self.manifest_count += 1;
        match &self.manifest {
            Some(v) => Reply::status_text(
                200,
                "text/yaml",
                &format!(
                    "version: {v}\nfiles:\n  - url: Kiro-Setup-{v}.exe\n    sha512: AAAA\n    size: 1\npath: Kiro-Setup-{v}.exe\nsha512: AAAA\nreleaseDate: '2026-12-01T00:00:00.000Z'\n"
                ),
            ),
            None => Reply::status(404, json!({ "message": "Not Found" })),
        }
    }
}

/// The version in `KiroIDE-<version>-<machine id>` of the User-Agent.
pub fn ide_version(rec: &Recorded) -> Option<String> {
    let ua = rec.header("user-agent")?;
    let rest = ua.split("KiroIDE-").nth(1)?;
    Some(rest.split('-').next()?.to_string())
}

fn at_least(version: &str, floor: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(version) >= parse(floor)
}
