//! `conflux-recorder`: the command line. Only `--help` and `--version` exist so far; the
//! commands arrive with their issues (see README).

use clap::Parser;

/// An institution's recording server: pulls encrypted recordings from the balancer, decrypts and serves them.
#[derive(Parser)]
#[command(name = "conflux-recorder", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    Cli::parse();
}
