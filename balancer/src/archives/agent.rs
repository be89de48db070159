//! The agents' recording calls, signed with their node key over method, path and content
//! digest ([`conflux_shared::transfer::agent_request`]):
//! - `GET /conflux/agent/recorder-keys/{fingerprint}`: a recording server's public key (PEM);
//! - `PUT /conflux/agent/archives/{recordID}`: an encrypted archive, streamed to disk, checked
//!   against its signed sha256 and its manifest, then queued for the owner's recorder;
//! - `GET /conflux/agent/archives`: the node's archives it may now delete;
//! - `DELETE /conflux/agent/archives/{recordID}`: the node deleted its copy.

use std::net::SocketAddr;
use std::sync::Arc;

use conflux_shared::crypto::archive;
use conflux_shared::response::Recording;
use conflux_shared::transfer::{self, EMPTY_SHA256};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, StatusCode};
use warp::{Buf, Filter};

use super::json;
use crate::agents::refuse;
use crate::health::{authenticate_agent, ReportError};
use crate::state::AppState;
use conflux_store::{self as store, recordings::Arrival, recordings::Arrived, IntegrationId, Node};

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(warp::reply::Response,)> {
    let with_state = warp::any().map(move || state.clone());
    let common = with_state
        .and(crate::connection::peer())
        .and(warp::path::full())
        .and(warp::header::headers_cloned());
    let key = warp::get()
        .and(warp::path!("conflux" / "agent" / "recorder-keys" / String))
        .and(common.clone())
        .then(recorder_key);
    let upload = warp::put()
        .and(warp::path!("conflux" / "agent" / "archives" / String))
        .and(common.clone())
        .and(warp::body::stream())
        .then(upload);
    let settled = warp::get()
        .and(warp::path!("conflux" / "agent" / "archives"))
        .and(common.clone())
        .then(settled);
    let dropped = warp::delete()
        .and(warp::path!("conflux" / "agent" / "archives" / String))
        .and(common)
        .then(dropped);
    key.or(upload)
        .unify()
        .or(settled)
        .unify()
        .or(dropped)
        .unify()
        .boxed()
}

/// The node whose agent signed `method path` with `content`.
fn authenticate(
    state: &AppState,
    method: &str,
    path: &warp::path::FullPath,
    headers: &HeaderMap,
    content: &str,
) -> Result<Arc<Node>, ReportError> {
    let header = crate::health::header_reader(headers);
    let nodes = state.nodes.load();
    let signed = transfer::agent_request(method, path.as_str(), content);
    authenticate_agent(&nodes.nodes, &header, &signed).map(|(node, _)| node.clone())
}

fn refused(peer: Option<SocketAddr>, e: &ReportError) -> warp::reply::Response {
    let status = match e {
        ReportError::Header(_) | ReportError::Body(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    refuse(status, peer, &format!("refused: {e}"))
}

async fn recorder_key(
    fingerprint: String,
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    path: warp::path::FullPath,
    headers: HeaderMap,
) -> warp::reply::Response {
    if let Err(e) = authenticate(&state, "GET", &path, &headers, EMPTY_SHA256) {
        return refused(peer, &e);
    }
    let integrations = state.integrations.load();
    match integrations
        .iter()
        .filter_map(|i| i.recorder.as_ref())
        .find(|r| r.fingerprint == fingerprint)
    {
        Some(recorder) => {
            use warp::Reply;
            warp::reply::with_header(
                recorder.key.clone(),
                "content-type",
                "application/x-pem-file",
            )
            .into_response()
        }
        None => refuse(
            StatusCode::NOT_FOUND,
            peer,
            &format!("no recording server has key {fingerprint}"),
        ),
    }
}

async fn upload(
    record_id: String,
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    path: warp::path::FullPath,
    headers: HeaderMap,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
) -> warp::reply::Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let sha256 = header(transfer::ARCHIVE_SHA256_HEADER).to_ascii_lowercase();
    let metadata_b64 = header(transfer::METADATA_HEADER);
    let node = match authenticate(
        &state,
        "PUT",
        &path,
        &headers,
        &format!("{sha256}\n{metadata_b64}"),
    ) {
        Ok(node) => node,
        Err(e) => return refused(peer, &e),
    };
    if !transfer::is_safe_record_id(&record_id) {
        return refuse(StatusCode::BAD_REQUEST, peer, "bad recording id");
    }
    let Some(recording) = transfer::decode_metadata(&metadata_b64)
        .and_then(|xml| conflux_shared::metadata::parse(&xml))
        .filter(|r| r.record_id == record_id)
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            peer,
            "the metadata header is not this recording's metadata.xml",
        );
    };
    let Some(owner) = owner(&state, &recording, node.id).await else {
        state.metrics.archive_refused("balancer");
        tracing::warn!(
            record_id,
            node = %node.name,
            meeting_id = recording.meeting_id,
            "Archive refused: its meeting was not placed on this node."
        );
        return refuse(
            StatusCode::CONFLICT,
            peer,
            &format!(
                "no integration created meeting {} on this node",
                recording.meeting_id
            ),
        );
    };
    let fingerprint = state
        .integrations
        .load()
        .iter()
        .find(|i| i.id == owner)
        .and_then(|i| i.recorder.as_ref().map(|r| r.fingerprint.clone()));
    let temp = super::incoming(&state.config, &record_id);
    let received = receive(&state, &temp, body, &sha256).await;
    let size = match received.and_then(|size| verify(&temp, size, &recording, fingerprint)) {
        Ok(size) => size,
        Err((status, why)) => {
            super::remove(&temp);
            state.metrics.archive_refused("balancer");
            tracing::warn!(record_id, node = %node.name, %why, "Archive refused.");
            return refuse(status, peer, &format!("archive {record_id}: {why}"));
        }
    };
    let arrival = arrival(&state, &recording, owner, Some(node.id), size, sha256);
    match store_arrival(&state, arrival, &temp).await {
        Ok(Arrived::Conflict) => {
            state.metrics.archive_refused("balancer");
            tracing::warn!(
                record_id,
                node = %node.name,
                "Archive refused: the recording is held from another node or integration."
            );
            refuse(
                StatusCode::CONFLICT,
                peer,
                &format!("recording {record_id} is held from another node"),
            )
        }
        Ok(outcome) => {
            tracing::info!(record_id, node = %node.name, size, ?outcome, "Archive received.");
            json(
                StatusCode::OK,
                &json!({ "status": format!("{outcome:?}").to_ascii_lowercase() }),
            )
        }
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, peer, &e),
    }
}

/// Streams `body` into `temp`, refusing more than the configured size and a digest other than
/// `sha256`. Returns its size.
async fn receive(
    state: &AppState,
    temp: &std::path::Path,
    mut body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
    sha256: &str,
) -> Result<u64, (StatusCode, String)> {
    let io = |e: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    std::fs::create_dir_all(super::dir(&state.config)).map_err(io)?;
    let mut file = tokio::fs::File::create(temp).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|e| (StatusCode::BAD_REQUEST, format!("upload broken: {e}")))?;
        while chunk.has_remaining() {
            let bytes = chunk.chunk();
            size += bytes.len() as u64;
            if size > state.config.recordings.max_archive_bytes {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, "archive too large".into()));
            }
            hasher.update(bytes);
            file.write_all(bytes).await.map_err(io)?;
            let n = bytes.len();
            chunk.advance(n);
        }
    }
    file.sync_all().await.map_err(io)?;
    drop(file);
    if hex::encode(hasher.finalize()) != sha256 {
        return Err((
            StatusCode::BAD_REQUEST,
            "the body does not match its signed sha256".into(),
        ));
    }
    Ok(size)
}

/// Checks what can be checked without the recorder's key: the archive's layout and length,
/// that its manifest names this recording and meeting, and that it was encrypted for the
/// owner's recording server (`fingerprint`).
fn verify(
    temp: &std::path::Path,
    size: u64,
    recording: &Recording,
    fingerprint: Option<String>,
) -> Result<u64, (StatusCode, String)> {
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let layout = std::fs::File::open(temp)
        .map(std::io::BufReader::new)
        .map_err(archive::ArchiveError::from)
        .and_then(|file| archive::inspect(file, size))
        .map_err(|e| bad(e.to_string()))?;
    if layout.manifest.record_id != recording.record_id
        || layout.manifest.meeting_id != recording.meeting_id
    {
        return Err(bad(format!(
            "its manifest names recording {} of meeting {}",
            layout.manifest.record_id, layout.manifest.meeting_id
        )));
    }
    if fingerprint.as_deref() != Some(layout.key_fingerprint.as_str()) {
        return Err(bad(format!(
            "it is encrypted for key {}, not the owner's recording server",
            layout.key_fingerprint
        )));
    }
    Ok(size)
}

/// The integration owning a recording: the one that created its meeting on `node` (event
/// log). A node may only upload recordings of meetings placed on it, whatever its metadata
/// says.
pub(super) async fn owner(
    state: &AppState,
    recording: &Recording,
    node: store::NodeId,
) -> Option<IntegrationId> {
    let meeting = recording.meeting_id.clone();
    let logged = match state.store.owner_of(&meeting, Some(node)).await {
        Ok(owner) => owner,
        Err(e) => {
            tracing::error!(error = %e, meeting_id = meeting, "Could not look up a meeting's owner.");
            None
        }
    };
    logged.filter(|id| state.integrations.load().iter().any(|i| i.id == *id))
}

/// The store's record of an archive that arrived for `recording`.
pub(super) fn arrival(
    state: &AppState,
    recording: &Recording,
    owner: IntegrationId,
    node: Option<store::NodeId>,
    size: u64,
    sha256: String,
) -> Arrival {
    let mut listed = recording.clone();
    listed.state = "processing".into();
    listed.playback.clear();
    Arrival {
        record_id: recording.record_id.clone(),
        integration_id: owner,
        node_id: node,
        meeting_id: recording.meeting_id.clone(),
        start_time: recording.start_time,
        end_time: recording.end_time,
        xml: listed.to_element().to_xml(),
        published: recording.published,
        size,
        sha256,
        protected: state.config.recordings.protected,
    }
}

/// Records an arrival and moves its file into place (or drops it when already known).
pub(super) async fn store_arrival(
    state: &AppState,
    arrival: Arrival,
    temp: &std::path::Path,
) -> Result<Arrived, String> {
    let record_id = arrival.record_id.clone();
    let outcome = state.store.archive_arrived(arrival).await;
    match outcome {
        Ok(Arrived::Queued) => {
            std::fs::rename(temp, super::path(&state.config, &record_id)).map_err(|e| {
                super::remove(temp);
                format!("could not keep the archive: {e}")
            })?;
            Ok(Arrived::Queued)
        }
        Ok(other) => {
            super::remove(temp);
            Ok(other)
        }
        Err(e) => {
            super::remove(temp);
            Err(format!("could not record the archive: {e}"))
        }
    }
}

async fn settled(
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    path: warp::path::FullPath,
    headers: HeaderMap,
) -> warp::reply::Response {
    let node = match authenticate(&state, "GET", &path, &headers, EMPTY_SHA256) {
        Ok(node) => node,
        Err(e) => return refused(peer, &e),
    };
    let id = node.id;
    match state.store.settled_on(id).await {
        Ok(settled) => json(StatusCode::OK, &json!(transfer::Settled { settled })),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, peer, &e.to_string()),
    }
}

async fn dropped(
    record_id: String,
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    path: warp::path::FullPath,
    headers: HeaderMap,
) -> warp::reply::Response {
    let node = match authenticate(&state, "DELETE", &path, &headers, EMPTY_SHA256) {
        Ok(node) => node,
        Err(e) => return refused(peer, &e),
    };
    let id = node.id;
    match state.store.archive_dropped(id, &record_id).await {
        Ok(()) => json(StatusCode::OK, &json!({ "ok": true })),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, peer, &e.to_string()),
    }
}
