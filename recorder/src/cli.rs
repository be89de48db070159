//! The recorder's command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// An institution's recording server: pulls the institution's encrypted recordings from the
/// Conflux balancer, decrypts and unpacks them, and serves their HTML5 playback.
#[derive(Debug, Parser)]
#[command(name = "conflux-recorder", version, arg_required_else_help = true)]
#[command(
    after_help = "Example:\n  conflux-recorder keygen --out /var/lib/conflux-recorder\n  conflux-recorder --config /etc/conflux/recorder.toml serve"
)]
pub struct Cli {
    /// The recorder's TOML configuration (env CONFLUX_RECORDER_CONFIG). Every key can also be
    /// set with CONFLUX_<SECTION>__<KEY>, e.g. CONFLUX_BALANCER__SECRET.
    #[arg(
        long,
        global = true,
        env = "CONFLUX_RECORDER_CONFIG",
        default_value = "/etc/conflux/recorder.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new RSA key pair: `recorder.key.pem` (private, mode 0600) and `recorder.pub.pem`
    /// (register it with `conflux-balancer integrations update ID --recorder-url URL
    /// --recorder-key recorder.pub.pem`). Refuses to overwrite an existing key.
    #[command(
        after_help = "Example:\n  conflux-recorder keygen --out /var/lib/conflux-recorder --bits 4096"
    )]
    Keygen {
        /// The folder to write the keys into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Key size in bits (3072 or more).
        #[arg(long, default_value_t = 3072)]
        bits: usize,
    },
    /// Pull, decrypt and unpack new recordings from the balancer, and serve their playback;
    /// prints `listening on http://ADDR` once ready.
    #[command(
        after_help = "Example:\n  conflux-recorder --config /etc/conflux/recorder.toml serve --listen 127.0.0.1:8091"
    )]
    Serve {
        /// Overrides `recorder.listen` (port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  conflux-recorder completions bash > /etc/bash_completion.d/conflux-recorder"
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
