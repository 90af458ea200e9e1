//! Subcommand implementations behind the thin binary. Each returns a
//! [`CliError`] whose [`CliError::exit_code`] is 2 for a bad config or bad
//! arguments (and for warnings under `validate --strict`), 1 for a runtime
//! failure.

use std::path::PathBuf;

use crate::config::{self, ConfigError};

/// What to do: the validated subcommand, built by `main.rs` from clap's parse.
#[derive(Debug)]
pub enum Action {
    Run {
        config: PathBuf,
    },
    Validate {
        config: PathBuf,
        /// Warnings fail validation (exit 2).
        strict: bool,
    },
    Report {
        config: PathBuf,
        window: Option<String>,
        json: bool,
    },
    Rules {
        config: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("invalid argument: {0}")]
    BadArgument(String),
    #[error("{0} warning(s), and --strict makes warnings fail validation")]
    StrictWarnings(usize),
    #[error("{0:#}")]
    Runtime(anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::BadArgument(_) | CliError::StrictWarnings(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

pub fn dispatch(cmd: Action) -> Result<(), CliError> {
    match cmd {
        Action::Validate { config, strict } => {
            let loaded = config::load_checked(&config, &config::process_env)?;
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let cfg = &loaded.config;
            let checks: usize = cfg.services.iter().map(|s| s.checks.len()).sum();
            let warnings = match loaded.warnings.len() {
                0 => String::new(),
                n => format!(", {n} warning(s)"),
            };
            println!(
                "{}: ok ({} services, {} checks, {} notifiers{warnings})",
                config.display(),
                cfg.services.len(),
                checks,
                cfg.notifiers.len()
            );
            if strict && !loaded.warnings.is_empty() {
                return Err(CliError::StrictWarnings(loaded.warnings.len()));
            }
            Ok(())
        }
        Action::Run { config } => {
            // Validate before anything else: a bad file never binds a port.
            // An unset `headers_env` variable is an error here, not a warning.
            let loaded = config::load_for_run(&config)?;
            for w in &loaded.warnings {
                tracing::warn!("config: {w}");
            }
            let cfg = loaded.config;
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let workers = crate::daemon::runtime_workers(&cfg, cpus);
            tracing::info!(
                worker_threads = workers,
                configured = cfg.server.worker_threads.is_some(),
                probes_per_second = %format!("{:.2}", crate::daemon::probe_rate(&cfg)),
                cpus,
                "runtime"
            );
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .map_err(|e| CliError::Runtime(e.into()))?;
            rt.block_on(async {
                crate::daemon::open_and_run(config, cfg, crate::daemon::shutdown_on_signals()).await
            })
            .map_err(CliError::Runtime)
        }
        Action::Report {
            config,
            window,
            json,
        } => {
            let window = window
                .map(|w| crate::report::parse_window(&w))
                .transpose()
                .map_err(|e| CliError::BadArgument(format!("--window: {e}")))?;
            let cfg = config::load(&config)?;
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            let out = crate::report::run(&cfg, &cfg.storage.path, window, json, now)
                .map_err(|e| CliError::Runtime(e.into()))?;
            print!("{out}");
            Ok(())
        }
        Action::Rules { config } => {
            let cfg = config::load(&config)?;
            print!("{}", crate::rules::generate(&cfg));
            Ok(())
        }
    }
}
