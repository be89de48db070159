//! A simulated BigBlueButton node: the BBB API under `/bigbluebutton/api` as bbb-web 2.7
//! answers it, plus a control API under `/sim` that tests and the demo use to add participants,
//! end meetings, produce recordings and inject faults.
//!
//! It does not run media, the HTML5 client or recording processing; `/html5client/join` answers
//! a small page so a browser following a join redirect lands somewhere real.

mod api;
mod callbacks;
mod control;
mod lifecycle;
mod meetings;
mod recordings;
mod state;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use conflux_shared::AlgorithmSet;
use tokio::net::TcpListener;
use tokio::sync::watch;
use warp::Filter;

pub use state::{Audio, Fault, Role};
pub use tls::TlsFiles;

/// How a simulated node behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub secret: String,
    /// Reported as `<bbbVersion>` by the index call.
    pub version: String,
    pub name: String,
    /// Accepted checksum algorithms (bbb-web's `supportedChecksumAlgorithms`).
    pub algorithms: AlgorithmSet,
    /// Where finished recordings are written; `None` keeps them in memory only.
    pub recordings_dir: Option<PathBuf>,
    /// The URL clients reach this node at (join redirects, playback URLs). Defaults to the
    /// listen address.
    pub public_url: Option<String>,
    /// How long a BBB "minute" lasts here (durations, expiry timers), so tests need not wait.
    pub minute: Duration,
    /// How long an ended meeting stays visible in getMeetings/getMeetingInfo.
    pub ended_retention: Duration,
    /// Serve HTTPS with this certificate instead of HTTP.
    pub tls: Option<TlsFiles>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            secret: String::new(),
            version: "2.7.3".into(),
            name: "bbb-sim".into(),
            algorithms: AlgorithmSet::ALL,
            recordings_dir: None,
            public_url: None,
            minute: Duration::from_secs(60),
            ended_retention: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// A running node's shared state.
pub(crate) struct Sim {
    config: SimConfig,
    public_url: String,
    inner: Mutex<state::Inner>,
    fault: watch::Sender<Fault>,
}

impl Sim {
    /// The state, even if a panicking thread poisoned the lock (the data stays consistent:
    /// every mutation is a single assignment or push).
    fn lock(&self) -> MutexGuard<'_, state::Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Serves a simulated node on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let mut inner = state::Inner::default();
    if let Some(dir) = &config.recordings_dir {
        std::fs::create_dir_all(dir)?;
        inner.recordings = recordings::load_all(dir);
    }
    let tls = config.tls.clone();
    let sim = Arc::new(Sim {
        config,
        public_url,
        inner: Mutex::new(inner),
        fault: watch::channel(Fault::Ok).0,
    });
    let sweeper = tokio::spawn(lifecycle::run(sim.clone()));
    let routes = api::routes(sim.clone())
        .or(control::routes(sim.clone()))
        .or(client_page());
    let served = match tls {
        Some(files) => tls::serve(listener, &files, routes, shutdown).await,
        None => {
            warp::serve(routes)
                .incoming(listener)
                .graceful(shutdown)
                .run()
                .await;
            Ok(())
        }
    };
    sweeper.abort();
    served
}

/// HTTP 413 for a body over the limit.
fn too_large() -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_status(
        "Request body too large",
        warp::http::StatusCode::PAYLOAD_TOO_LARGE,
    )
    .into_response()
}

/// What a browser sees after following a join redirect.
fn client_page() -> warp::filters::BoxedFilter<(impl warp::Reply,)> {
    warp::path!("html5client" / "join")
        .and(warp::get())
        .map(|| {
            warp::reply::html(
                "<!doctype html><title>BBB client (simulated)</title><p>Joined the simulated meeting.</p>",
            )
        })
        .boxed()
}
