//! The recorder's command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// An institution's recording server: pulls the institution's encrypted recordings from the
/// Conflux balancer, decrypts and unpacks them, and serves their HTML5 playback.
#[derive(Debug, Parser)]
#[command(name = "conflux-recorder", version, arg_required_else_help = true)]
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
    Serve {
        /// Overrides `recorder.listen` (port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
    },
}
