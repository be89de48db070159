//! The agent's command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Reports a BBB node's health and load to the Conflux balancer and hands it finished recordings,
/// encrypted for their institution's recording server; also runs as a Nagios plugin.
#[derive(Debug, Parser)]
#[command(name = "conflux-agent", version, arg_required_else_help = true)]
pub struct Cli {
    /// The agent's TOML configuration (env CONFLUX_AGENT_CONFIG). Every key can also be set
    /// with CONFLUX_<SECTION>__<KEY>, e.g. CONFLUX_NODE__SECRET.
    #[arg(
        long,
        global = true,
        env = "CONFLUX_AGENT_CONFIG",
        default_value = "/etc/conflux/agent.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrol with the balancer (first run), then report every interval and work the recordings
    /// outbox until stopped.
    Run,
    /// Nagios plugin: measure once, print one status line with perfdata, exit 0/1/2/3
    /// (OK/WARNING/CRITICAL/UNKNOWN). Thresholds are percentages for cpu, memory and disk,
    /// Mbit/s for network (the busier direction) and users for bbb.
    Check {
        #[arg(value_enum)]
        what: CheckKind,
        /// WARNING at or above this value.
        #[arg(short, long)]
        warning: Option<f64>,
        /// CRITICAL at or above this value.
        #[arg(short, long)]
        critical: Option<f64>,
        /// How long cpu and network are measured, in seconds.
        #[arg(long, default_value_t = 1.0)]
        sample_secs: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckKind {
    Cpu,
    Memory,
    Disk,
    Network,
    Bbb,
}
