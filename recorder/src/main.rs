//! `conflux-recorder`: an institution's recording server. `keygen` writes its RSA key pair;
//! `serve` runs the pull loop ([`pull`]) beside the playback server ([`playback`]). Exit codes:
//! 0, 1 when serving fails, 2 for bad configuration or arguments.

mod cli;
mod config;
mod playback;
mod pull;
mod store;
mod unpack;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use config::Config;
use conflux_shared::crypto::RecorderKey;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Completions { shell } => {
            conflux_shared::cli_docs::print_completions(Cli::command(), shell)
        }
        Command::ManPages { out } => {
            conflux_shared::cli_docs::write_man_pages(Cli::command(), &out)
        }
        Command::Keygen { out, bits } => match keygen(&out, bits) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Serve { listen } => {
            conflux_shared::telemetry::init(conflux_shared::telemetry::DEFAULT_FILTER);
            let env: Vec<(String, String)> = std::env::vars().collect();
            let mut config = match Config::load(&cli.config, &env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(listen) = listen {
                config.listen = listen;
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn keygen(out: &std::path::Path, bits: usize) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    anyhow::ensure!(
        bits >= conflux_shared::crypto::MIN_RSA_BITS,
        "keys must have 3072 bits or more"
    );
    std::fs::create_dir_all(out)?;
    let private_path = out.join("recorder.key.pem");
    let public_path = out.join("recorder.pub.pem");
    anyhow::ensure!(
        !private_path.exists(),
        "{} exists; refusing to overwrite a key",
        private_path.display()
    );
    let (private, public) = RecorderKey::generate(bits)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private_path)?;
    file.write_all(private.as_bytes())?;
    file.sync_all()?;
    std::fs::write(&public_path, &public.pem)?;
    #[allow(clippy::print_stdout)] // the command's answer
    {
        println!("private key: {}", private_path.display());
        println!("public key:  {}", public_path.display());
        println!("fingerprint: {}", public.fingerprint);
    }
    Ok(())
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    use anyhow::Context;
    let private_key = std::fs::read_to_string(&config.private_key).with_context(|| {
        format!(
            "cannot read the private key {} (create one with `conflux-recorder keygen`)",
            config.private_key.display()
        )
    })?;
    std::fs::create_dir_all(&config.data_dir)?;
    let store = store::Store::open(&config.data_dir.join("recorder.sqlite3"))?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    if config.public_url.is_empty() {
        config.public_url = format!("http://{address}");
        tracing::warn!(
            public_url = %config.public_url,
            "recorder.public_url is not set: playback links use the listening address."
        );
    }
    let config = Arc::new(config);
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(60))
        .build()?;
    let puller = pull::Puller {
        config: config.clone(),
        store: store.clone(),
        client,
        private_key: Arc::new(private_key),
    };
    let app = playback::Playback {
        config: config.clone(),
        store,
        templates: Arc::new(conflux_templates::Templates::new()?),
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(puller.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = puller.round().await {
                tracing::warn!(error = %e, "Pull round failed; will retry.");
            }
        }
    });
    #[allow(clippy::print_stdout)] // the harness and operators read this line
    {
        println!("listening on http://{address}");
    }
    tracing::info!(%address, balancer = %config.balancer_url, "Recorder started.");
    warp::serve(playback::routes(app))
        .incoming(listener)
        .graceful(conflux_shared::process::shutdown_signal())
        .run()
        .await;
    Ok(())
}
