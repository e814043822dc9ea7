//! The command line: `--host`, `--port`, `--env-file`, `--help`, `--version`, and the merge of
//! `.env` < process environment < flags that feeds [`Config`]'s validation.

use std::collections::HashMap;
use std::path::PathBuf;

use super::vars::Vars;
use super::{expand_home, from_vars, parse_dotenv, Config};
use crate::error::Error;

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Start the gateway with this configuration.
    Serve(Box<Config>),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// Usage text for `--help`.
pub const HELP: &str = "kiro-gateway: OpenAI and Anthropic compatible gateway to the Kiro API

Usage: kiro-gateway [--host H] [--port P] [--env-file PATH] [--version] [--help]

Options:
  -H, --host H         address to listen on (default 0.0.0.0, or SERVER_HOST)
  -p, --port P         port to listen on (default 8000, or SERVER_PORT)
      --env-file PATH  read settings from PATH instead of ./.env
  -v, --version        print the version and exit
  -h, --help           print this help and exit

Every setting is an environment variable (see README.md): PROXY_API_KEY, REFRESH_TOKEN,
KIRO_CREDS_FILE, KIRO_CLI_DB_FILE, KIRO_API_KEY, KIRO_ACCOUNTS_FILE, ...";

/// Parse the command line and the environment into a [`Command`].
///
/// `args` excludes the program name; `env` is the process environment (passed in so tests can
/// drive this without touching the real one).
pub fn load(args: &[String], env: &HashMap<String, String>) -> Result<Command, Error> {
    let mut host_flag = None;
    let mut port_flag = None;
    let mut env_file: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |flag: &str| -> Result<String, Error> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| Error::Config(format!("{flag} needs a value")))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-v" | "--version" => return Ok(Command::Version),
            "-H" | "--host" => host_flag = Some(value("--host")?),
            "-p" | "--port" => port_flag = Some(value("--port")?),
            "--env-file" => env_file = Some(expand_home(&value("--env-file")?)),
            other => {
                return Err(Error::Config(format!(
                    "unknown argument '{other}' (see --help)"
                )))
            }
        }
    }

    let mut vars: HashMap<String, String> = HashMap::new();
    let dotenv_path = env_file.clone().unwrap_or_else(|| PathBuf::from(".env"));
    match std::fs::read_to_string(&dotenv_path) {
        Ok(text) => vars.extend(parse_dotenv(&text)),
        Err(e) if env_file.is_some() => {
            return Err(Error::Config(format!(
                "--env-file {}: {e}",
                dotenv_path.display()
            )))
        }
        Err(_) => {}
    }
    for (k, v) in env {
        vars.insert(k.clone(), v.clone());
    }
    if let Some(h) = host_flag {
        vars.insert("SERVER_HOST".into(), h);
    }
    if let Some(p) = port_flag {
        vars.insert("SERVER_PORT".into(), p);
    }
    from_vars(&Vars(vars)).map(|c| Command::Serve(Box::new(c)))
}
