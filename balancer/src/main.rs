//! `conflux-balancer`: parses the command line, sets up logging, loads the configuration and
//! dispatches. Exit codes: 0 success, 1 a command failed, 2 bad configuration or input.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use conflux_balancer::cli::{Cli, Command};
use conflux_balancer::config::Config;
use conflux_balancer::{admin, demo};

/// mimalloc instead of glibc's malloc: a proxied call allocates a few short-lived buffers, and
/// glibc spent about 7% of the balancer's CPU on them; its per-thread arenas also kept memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // What the command line tells about itself needs no configuration.
    match &cli.command {
        Command::Completions { shell } => {
            return conflux_shared::cli_docs::print_completions(Cli::command(), *shell)
        }
        Command::ManPages { out } => {
            return conflux_shared::cli_docs::write_man_pages(Cli::command(), out)
        }
        _ => {}
    }
    conflux_shared::telemetry::init(conflux_shared::telemetry::DEFAULT_FILTER);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = match Config::load(cli.config.as_deref(), cli.data_dir.clone(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Demo { listen } => demo::run(&listen, cli.data_dir.as_deref()),
        command => admin::run(config, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(if e.is::<admin::UsageError>() { 2 } else { 1 })
        }
    }
}
