//! `conflux-balancer`: the command line. Only `--help` and `--version` exist so far; the
//! commands arrive with their issues (see README).

use clap::Parser;

/// One BigBlueButton API in front of a federated pool of BBB nodes (Mconf-LB design; a drop-in Scalelite replacement).
#[derive(Parser)]
#[command(name = "conflux-balancer", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    Cli::parse();
}
