//! `conflux-agent`: parses the command line, loads the configuration and runs the report loop
//! or one Nagios check. Exit codes: `run` 0, or 2 for bad configuration; `check` the Nagios
//! codes 0/1/2/3 (bad configuration is UNKNOWN, 3).

mod cli;
mod collect;
mod config;
mod nagios;
mod node_key;
mod outbox;
mod report;
mod threshold;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use config::Config;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Completions { shell } => {
            conflux_shared::cli_docs::print_completions(Cli::command(), shell)
        }
        Command::ManPages { out } => {
            conflux_shared::cli_docs::write_man_pages(Cli::command(), &out)
        }
        Command::Run => {
            conflux_shared::telemetry::init(conflux_shared::telemetry::DEFAULT_FILTER);
            let config = match Config::load(&cli.config, &env, false) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(report::run(
                config,
                conflux_shared::process::shutdown_signal(),
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Check {
            what,
            warning,
            critical,
            sample_secs,
        } => {
            let output = match Config::load(&cli.config, &env, false) {
                Ok(config) => {
                    let sample = Duration::try_from_secs_f64(sample_secs).unwrap_or_default();
                    runtime.block_on(nagios::check(&config, what, warning, critical, sample))
                }
                Err(e) => nagios::PluginOutput {
                    status: conflux_shared::status::Status::Unknown,
                    line: format!("AGENT UNKNOWN - {e}"),
                },
            };
            #[allow(clippy::print_stdout)] // the plugin's one output line
            {
                println!("{}", output.line);
            }
            ExitCode::from(output.status.exit_code())
        }
    }
}

/// Bad arguments: clap's message and exit 2, except for `check`, whose callers are Nagios and
/// its kin: one plugin line and UNKNOWN (3), as the plugin guidelines want. Help and version
/// requests print and exit 0.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if std::env::args().skip(1).any(|a| a == "check") {
        // clap's message up to its usage lines, on one line.
        let text = e.to_string();
        let why: Vec<&str> = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
            .collect();
        let why = why.join(" ");
        let why = why.trim_start_matches("error: ");
        #[allow(clippy::print_stdout)] // the plugin's one output line
        {
            println!("AGENT UNKNOWN - {why} (conflux-agent check --help)");
        }
        return ExitCode::from(3);
    }
    let _ = e.print();
    ExitCode::from(2)
}
