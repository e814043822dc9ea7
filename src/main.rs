//! `kiro-gateway`: parse the command line and the environment, load the login, serve. Exit codes:
//! 0 for `--help`/`--version`, 2 for invalid configuration or credentials, 1 when the server
//! cannot start (for example, the port is in use).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use kiro_gateway::config::{self, Command, EXAMPLE_PROXY_KEY};
use kiro_gateway::error::Error;
use kiro_gateway::pipeline::App;

fn main() -> ExitCode {
    kiro_gateway::sys::limit_malloc_arenas();
    kiro_gateway::sys::raise_open_files_limit();
    let stop = kiro_gateway::sys::StopSignals::block();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: HashMap<String, String> = std::env::vars().collect();
    let cfg = match config::load(&args, &env) {
        Ok(Command::Help) => {
            println!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("kiro-gateway {}", kiro_gateway::VERSION);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Serve(c)) => *c,
        Err(e) => {
            eprintln!("kiro-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    kiro_gateway::logger::init(cfg.log_level);
    kiro_gateway::alerts::init(cfg.alert_webhook.clone());
    match cfg.proxy_api_key.as_deref() {
        None if cfg.keys_file.is_some() => {}
        None => log::warn!(
            "no PROXY_API_KEY is set: anyone who can reach {}:{} can use your Kiro account (loopback only)",
            cfg.host, cfg.port
        ),
        Some(EXAMPLE_PROXY_KEY) => log::warn!(
            "PROXY_API_KEY is the example key from the README: set a secret of your own"
        ),
        Some(_) => {}
    }
    let app = match App::new(cfg) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("kiro-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    match stop {
        Ok(stop) => save_and_exit_on(stop, app.clone()),
        Err(e) => log::warn!(
            "cannot catch stop signals ({e}); usage of the last seconds may be lost at exit"
        ),
    }
    match kiro_gateway::server::serve(app) {
        Ok(running) => {
            log::info!(
                "kiro-gateway {} listening on http://{} (OpenAI: /v1, Anthropic: /v1/messages, health: /health)",
                kiro_gateway::VERSION,
                running.addr
            );
            running.wait();
            ExitCode::SUCCESS
        }
        Err(Error::Config(m)) => {
            eprintln!("kiro-gateway: {m}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("kiro-gateway: {e}");
            ExitCode::from(1)
        }
    }
}

/// On SIGTERM or SIGINT: write what is kept in memory, then exit (0, a requested stop).
fn save_and_exit_on(stop: kiro_gateway::sys::StopSignals, app: Arc<App>) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let signal = stop.wait();
            log::info!("stopping (signal {signal}): saving usage per client key");
            app.usage.flush();
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        log::warn!(
            "cannot start the signal thread ({e}); usage of the last seconds may be lost at exit"
        );
    }
}
