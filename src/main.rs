//! The `sentinel` binary: parse arguments, set up logging, hand over to the
//! library, map the result to an exit code (0 ok, 2 bad config or arguments,
//! 1 runtime failure). Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "sentinel",
    version,
    about = "Synthetic checks, SLOs, error budgets and incident webhooks"
)]
struct Cli {
    /// Log format on stderr. Filter with RUST_LOG (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: SubcommandArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum SubcommandArgs {
    /// Run the daemon.
    Run {
        #[arg(short, long, default_value = "config/sentinel.yaml")]
        config: PathBuf,
    },
    /// Check a config file; print every problem with its line and column,
    /// and warnings (unset `_env` variables, disabled write API, ...).
    Validate {
        #[arg(short, long, default_value = "config/sentinel.yaml")]
        config: PathBuf,
        /// Fail (exit 2) on warnings too.
        #[arg(long)]
        strict: bool,
    },
    /// SLO and incident report from the stored state; no daemon needed.
    Report {
        #[arg(short, long, default_value = "config/sentinel.yaml")]
        config: PathBuf,
        /// Override the SLO window: a duration (`30d`, `7d`) or `month`.
        #[arg(long)]
        window: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print Prometheus recording and alerting rules equivalent to the configured SLOs.
    Rules {
        #[arg(short, long, default_value = "config/sentinel.yaml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.log_format);
    match sentinel::cli::dispatch(to_lib(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn to_lib(c: SubcommandArgs) -> sentinel::cli::Action {
    use sentinel::cli::Action as L;
    match c {
        SubcommandArgs::Run { config } => L::Run { config },
        SubcommandArgs::Validate { config, strict } => L::Validate { config, strict },
        SubcommandArgs::Report {
            config,
            window,
            json,
        } => L::Report {
            config,
            window,
            json,
        },
        SubcommandArgs::Rules { config } => L::Rules { config },
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: logs piped to a file or journald stay plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
