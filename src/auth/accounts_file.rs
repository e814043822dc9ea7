//! The accounts file (`KIRO_ACCOUNTS_FILE`): a JSON list of logins with their per-account
//! settings, validated whole at start-up so every problem names the entry it is in.

use std::path::Path;

use serde_json::Value;

use crate::auth::{LoginSource, LoginSpec};
use crate::config::expand_home;
use crate::error::Error;

/// One entry of the accounts file, validated.
#[derive(Debug, Clone)]
pub struct AccountEntry {
    pub spec: LoginSpec,
    pub priority: i64,
    pub enabled: bool,
}

/// Read and validate the accounts file. Every problem names the entry.
pub fn load_accounts_file(path: &Path) -> Result<Vec<AccountEntry>, Error> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("KIRO_ACCOUNTS_FILE {shown}: {e}")))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Config(format!("KIRO_ACCOUNTS_FILE {shown} is not valid JSON: {e}")))?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("accounts") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(Error::Config(format!(
                    "KIRO_ACCOUNTS_FILE {shown} must be a JSON list of accounts"
                )))
            }
        },
        _ => {
            return Err(Error::Config(format!(
                "KIRO_ACCOUNTS_FILE {shown} must be a JSON list of accounts"
            )))
        }
    };
    if list.is_empty() {
        return Err(Error::Config(format!(
            "KIRO_ACCOUNTS_FILE {shown} lists no account"
        )));
    }
    let mut out: Vec<AccountEntry> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let entry = parse_entry(i, item)?;
        if out.iter().any(|e| e.spec.name == entry.spec.name) {
            return Err(Error::Config(format!(
                "KIRO_ACCOUNTS_FILE entry {i}: the name '{}' is used twice",
                entry.spec.name
            )));
        }
        out.push(entry);
    }
    Ok(out)
}

/// The fields an accounts file entry may have.
const KNOWN_FIELDS: [&str; 11] = [
    "name",
    "refresh_token",
    "creds_file",
    "cli_db_file",
    "api_key",
    "profile_arn",
    "region",
    "proxy",
    "priority",
    "enabled",
    "machine_id",
];

/// One entry's object with its label ("entry 2 ('work')") for messages.
struct Fields<'a> {
    o: &'a serde_json::Map<String, Value>,
    label: String,
}

impl Fields<'_> {
    fn bad(&self, what: &str) -> Error {
        Error::Config(format!("KIRO_ACCOUNTS_FILE {}: {what}", self.label))
    }

    fn text(&self, key: &str) -> Result<Option<String>, Error> {
        match self.o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(_) => Err(self.bad(&format!("\"{key}\" must be a non-empty string"))),
        }
    }

    /// Exactly one of the four login sources.
    fn source(&self) -> Result<LoginSource, Error> {
        let mut sources = Vec::new();
        if let Some(t) = self.text("refresh_token")? {
            sources.push(LoginSource::RefreshToken(t));
        }
        if let Some(p) = self.text("creds_file")? {
            sources.push(LoginSource::CredsFile(expand_home(&p)));
        }
        if let Some(p) = self.text("cli_db_file")? {
            sources.push(LoginSource::CliDb(expand_home(&p)));
        }
        if let Some(k) = self.text("api_key")? {
            if !k.starts_with("ksk_") {
                return Err(self.bad("\"api_key\" must be a Kiro API key (ksk_...)"));
            }
            sources.push(LoginSource::ApiKey(k));
        }
        match (sources.pop(), sources.is_empty()) {
            (Some(source), true) => Ok(source),
            _ => Err(self.bad(
                "needs exactly one of \"refresh_token\", \"creds_file\", \"cli_db_file\", \"api_key\"",
            )),
        }
    }

    fn proxy(&self) -> Result<Option<String>, Error> {
        let proxy = self.text("proxy")?;
        if let Some(p) = &proxy {
            if p != "direct" && crate::net::check_proxy(p).is_err() {
                return Err(self.bad(
                    "\"proxy\" must be an http://, https:// or socks5:// URL, or \"direct\"",
                ));
            }
        }
        Ok(proxy)
    }

    fn priority(&self) -> Result<i64, Error> {
        match self.o.get("priority") {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| self.bad("\"priority\" must be an integer")),
        }
    }

    fn enabled(&self) -> Result<bool, Error> {
        match self.o.get("enabled") {
            None | Some(Value::Null) => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad("\"enabled\" must be true or false")),
        }
    }
}

fn parse_entry(i: usize, item: &Value) -> Result<AccountEntry, Error> {
    let o = item.as_object().ok_or_else(|| {
        Error::Config(format!("KIRO_ACCOUNTS_FILE entry {i} is not a JSON object"))
    })?;
    let label = o
        .get("name")
        .and_then(Value::as_str)
        .map(|n| format!("entry {i} ('{n}')"))
        .unwrap_or_else(|| format!("entry {i}"));
    let f = Fields { o, label };
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| f.bad("needs a non-empty \"name\""))?
        .to_string();
    let source = f.source()?;
    let profile_arn = f.text("profile_arn")?;
    if let Some(arn) = &profile_arn {
        crate::config::check_profile_arn(
            arn,
            &format!("KIRO_ACCOUNTS_FILE {} profile_arn", f.label),
        )?;
    }
    let proxy = f.proxy()?;
    let priority = f.priority()?;
    let enabled = f.enabled()?;
    if let Some(k) = o.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(f.bad(&format!("unknown field \"{k}\"")));
    }
    Ok(AccountEntry {
        spec: LoginSpec {
            name,
            source,
            profile_arn,
            region: f.text("region")?,
            proxy,
            machine_id: f.text("machine_id")?,
        },
        priority,
        enabled,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entries(v: Value) -> Result<Vec<AccountEntry>, Error> {
        let dir = std::env::temp_dir().join(format!("kgw-acc-{}", crate::util::random_hex(12)));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("accounts.json");
        std::fs::write(&p, v.to_string()).unwrap();
        let r = load_accounts_file(&p);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn accounts_file_entries_are_validated_by_name() {
        let ok = entries(json!([
            {"name": "a", "refresh_token": "r", "priority": 2},
            {"name": "b", "api_key": "ksk_x", "proxy": "direct", "enabled": false}
        ]))
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].priority, 2);
        assert!(!ok[1].enabled);
        for (v, needle) in [
            (json!([{"name": "a"}]), "exactly one"),
            (
                json!([{"name": "a", "refresh_token": "r", "api_key": "ksk_1"}]),
                "exactly one",
            ),
            (json!([{"refresh_token": "r"}]), "name"),
            (
                json!([{"name": "a", "refresh_token": "r"}, {"name": "a", "refresh_token": "s"}]),
                "twice",
            ),
            (json!([{"name": "a", "api_key": "nope"}]), "ksk_"),
            (
                json!([{"name": "a", "refresh_token": "r", "priority": "high"}]),
                "priority",
            ),
            (
                json!([{"name": "a", "refresh_token": "r", "colour": 1}]),
                "colour",
            ),
            (
                json!([{"name": "a", "refresh_token": "r", "proxy": "ftp://x"}]),
                "proxy",
            ),
            (json!([]), "no account"),
        ] {
            let e = entries(v).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let e = entries(json!([{"name": "x", "refresh_token": "r"}, {"name": "bad"}]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 1 ('bad')"), "{e}");
    }
}
