//! `conflux-bbb-sim`: a simulated BigBlueButton node for tests and the demo.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conflux_shared::AlgorithmSet;
use conflux_tests::sim::{self, SimConfig};

/// A simulated BigBlueButton node: the BBB API under /bigbluebutton/api as bbb-web 2.7 answers
/// it (create, join, end, isMeetingRunning, getMeetingInfo, getMeetings, insertDocument,
/// sendChatMessage, getRecordings, publishRecordings, deleteRecordings, updateRecordings,
/// getRecordingTextTracks), checksums sha1/sha256/sha384/sha512.
///
/// Control API (JSON), for tests and demos:
///   GET    /sim/status
///   POST   /sim/meetings/{meetingID}/participants  {"fullName","role":"MODERATOR|VIEWER","audio":"none|voice|listen","video":N,"userID"}
///   PATCH  /sim/meetings/{meetingID}/participants/{userID}  {"audio","video","presenter"}
///   DELETE /sim/meetings/{meetingID}/participants/{userID}
///   POST   /sim/meetings/{meetingID}/end
///   POST   /sim/meetings/{meetingID}/recording  {"size_bytes":N}
///   POST   /sim/fault  {"mode":"ok|slow|error|hang","delay_ms":N}
#[derive(Parser)]
#[command(
    name = "conflux-bbb-sim",
    disable_version_flag = true,
    verbatim_doc_comment
)]
struct Cli {
    /// Address to listen on (port 0 picks a free port); prints `listening on http://ADDR`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The node's shared secret (bbb-web's securitySalt).
    #[arg(long, env = "SIM_SECRET")]
    secret: String,
    /// BBB version reported by the index call.
    #[arg(long = "version", default_value = "2.7.3")]
    bbb_version: String,
    /// A name for logs and /sim/status.
    #[arg(long, default_value = "bbb-sim")]
    name: String,
    /// Accepted checksum algorithms (comma list).
    #[arg(long, default_value = "sha1,sha256,sha384,sha512")]
    checksum_algorithms: String,
    /// Where finished recordings are written (one BBB-style folder per recording).
    #[arg(long)]
    recordings_dir: Option<PathBuf>,
    /// URL clients reach this node at, for join redirects and playback links.
    #[arg(long)]
    public_url: Option<String>,
    /// Seconds a BBB "minute" lasts (meeting durations and expiry timers).
    #[arg(long, default_value_t = 60.0)]
    minute_secs: f64,
    /// Seconds an ended meeting stays listed.
    #[arg(long, default_value_t = 60.0)]
    ended_retention_secs: f64,
    /// Serve HTTPS with this certificate chain (PEM), as a real BBB node does; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    conflux_shared::telemetry::init(conflux_shared::telemetry::DEFAULT_FILTER);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let algorithms: AlgorithmSet = cli.checksum_algorithms.parse()?;
    if cli.secret.is_empty() {
        anyhow::bail!("--secret must not be empty");
    }
    let seconds = |name: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .map_err(|_| anyhow::anyhow!("--{name} must be a non-negative number"))
    };
    let config = SimConfig {
        secret: cli.secret,
        version: cli.bbb_version,
        name: cli.name,
        algorithms,
        recordings_dir: cli.recordings_dir,
        public_url: cli.public_url,
        minute: seconds("minute-secs", cli.minute_secs)?,
        ended_retention: seconds("ended-retention-secs", cli.ended_retention_secs)?,
        tls: cli
            .tls_cert
            .zip(cli.tls_key)
            .map(|(certificate, key)| sim::TlsFiles { certificate, key }),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&cli.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cli.listen))?;
        let addr = listener.local_addr()?;
        #[allow(clippy::print_stdout)] // the one stdout line tests and scripts parse
        {
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            println!("listening on {scheme}://{addr}");
        }
        sim::serve(listener, config, conflux_shared::process::shutdown_signal()).await
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
