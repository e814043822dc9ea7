//! The merged variables (`.env` < process environment < flags) with typed getters whose errors
//! name the variable.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::expand_home;
use crate::error::Error;

/// The merged variables, with typed getters whose errors name the variable.
pub(super) struct Vars(pub(super) HashMap<String, String>);

impl Vars {
    pub(super) fn get(&self, key: &str) -> Option<String> {
        self.0
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn parse<T: std::str::FromStr>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| Error::Config(format!("{key}={v} is not valid: expected {what}"))),
        }
    }

    pub(super) fn seconds(&self, key: &str) -> Result<Option<Duration>, Error> {
        match self.parse::<f64>(key, "a number of seconds")? {
            Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
            Some(_) => Err(Error::Config(format!(
                "{key} is not valid: expected a non-negative number of seconds"
            ))),
            None => Ok(None),
        }
    }

    pub(super) fn flag(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" | "enabled" => Ok(Some(true)),
                "0" | "false" | "no" | "off" | "disabled" => Ok(Some(false)),
                _ => Err(Error::Config(format!(
                    "{key}={v} is not valid: expected true or false"
                ))),
            },
        }
    }

    pub(super) fn path(&self, key: &str) -> Option<PathBuf> {
        self.get(key).map(|v| expand_home(&v))
    }

    pub(super) fn url(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => {
                Ok(Some(v.trim_end_matches('/').to_string()))
            }
            Some(v) => Err(Error::Config(format!(
                "{key}={v} is not valid: expected an http:// or https:// URL"
            ))),
        }
    }

    /// One of a fixed set of words (case does not matter); anything else names the variable and
    /// the words it accepts.
    pub(super) fn choice<T: Copy>(
        &self,
        key: &str,
        options: &[(&str, T)],
        expected: &str,
    ) -> Result<Option<T>, Error> {
        let Some(given) = self.get(key) else {
            return Ok(None);
        };
        options
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(&given))
            .map(|(_, value)| Some(*value))
            .ok_or_else(|| {
                Error::Config(format!("{key}={given} is not valid: expected {expected}"))
            })
    }
}
