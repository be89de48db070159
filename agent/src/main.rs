//! `conflux-agent`: the command line. Only `--help` and `--version` exist so far; the
//! commands arrive with their issues (see README).

use clap::Parser;

/// Reports a BBB node's health and load to the Conflux balancer; also runs as a Nagios plugin.
#[derive(Parser)]
#[command(name = "conflux-agent", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    Cli::parse();
}
