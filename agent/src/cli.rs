//! The agent's command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Reports a BBB node's health and load to the Conflux balancer and hands it finished recordings,
/// encrypted for their institution's recording server; also runs as a Nagios plugin.
#[derive(Debug, Parser)]
#[command(name = "conflux-agent", version, arg_required_else_help = true)]
#[command(
    after_help = "Example:\n  conflux-agent --config /etc/conflux/agent.toml run\n  conflux-agent check cpu --warning 70 --critical 90"
)]
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
    #[command(after_help = "Example:\n  conflux-agent --config /etc/conflux/agent.toml run")]
    Run,
    /// Nagios plugin: measure once, print one status line with perfdata, exit 0/1/2/3
    /// (OK/WARNING/CRITICAL/UNKNOWN; bad arguments are UNKNOWN). Thresholds are the plugin
    /// guidelines' ranges (10 alerts above 10 or below 0, 10: below 10, ~:10 above 10, 10:20
    /// outside 10..20, @10:20 inside), in percent for cpu, memory and disk, Mbit/s for network
    /// (the busier direction) and users for bbb.
    #[command(
        after_help = "Example:\n  conflux-agent check network --warning 500 --critical 800\n  conflux-agent check bbb -w 200 -c 300\n  conflux-agent check cpu -w 5: -c 1:   # alert when (nearly) idle"
    )]
    Check {
        /// What to measure.
        #[arg(value_enum)]
        what: CheckKind,
        /// WARNING when the value is outside this range (inside, with @).
        #[arg(short, long, allow_hyphen_values = true)]
        warning: Option<crate::threshold::Range>,
        /// CRITICAL when the value is outside this range (inside, with @).
        #[arg(short, long, allow_hyphen_values = true)]
        critical: Option<crate::threshold::Range>,
        /// How long cpu and network are measured, in seconds.
        #[arg(long, default_value_t = 1.0)]
        sample_secs: f64,
    },
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  conflux-agent completions bash > /etc/bash_completion.d/conflux-agent"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: conflux_shared::cli_docs::Shell,
    },
    /// Write the man pages of every command into a folder (for packages).
    #[command(hide = true)]
    ManPages {
        /// The folder.
        #[arg(long)]
        out: PathBuf,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_command_has_an_example_and_every_argument_a_description() {
        let cmd = super::Cli::command();
        cmd.clone().debug_assert();
        assert_eq!(
            conflux_shared::cli_docs::undocumented(&cmd),
            Vec::<String>::new()
        );
    }
}
