//! The recording servers' calls, signed with their integration's secret like BBB API calls
//! (`checksum` over call name + query + secret, with a `ts` unix-seconds parameter within five
//! minutes so captured URLs go stale):
//! - `GET /conflux/recorder/feed?since=N` (`recorderFeed`): new archives and changes;
//! - `GET /conflux/recorder/archives/{recordID}` (`recorderArchive`): the archive, with Range
//!   support so interrupted downloads resume;
//! - `POST /conflux/recorder/archives/{recordID}/done` (`recorderDone`): the body is the
//!   processed `<recording>` with playback on the recorder; the balancer's copy is dropped and
//!   the recording-ready callback relayed;
//! - `POST /conflux/recorder/archives/{recordID}/failed` (`recorderFailed`): the body is the
//!   reason; the archive is kept aside for inspection.

use std::net::SocketAddr;
use std::sync::Arc;

use conflux_shared::response::Recording;
use conflux_shared::transfer::{
    self, RECORDER_ARCHIVE_CALL, RECORDER_DONE_CALL, RECORDER_FAILED_CALL, RECORDER_FEED_CALL,
};
use conflux_shared::{Query, SignedQuery};
use serde_json::json;
use tokio_util::io::ReaderStream;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::hyper::body::Bytes;
use warp::{Filter, Reply};

use super::json;
use crate::state::AppState;
use conflux_store::{self as store, Integration};

/// How far a recorder's `ts` may be from the balancer's clock.
const MAX_SKEW_SECS: i64 = 300;
const FEED_PAGE: usize = 500;
/// A processed `<recording>` or a failure reason.
const MAX_BODY: usize = 1 << 20;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(warp::reply::Response,)> {
    let with_state = warp::any().map(move || state.clone());
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let body = warp::body::stream().then(|body| async move {
        conflux_shared::body::read_limited(body, MAX_BODY)
            .await
            .ok()
    });
    let feed = warp::get()
        .and(warp::path!("conflux" / "recorder" / "feed"))
        .and(with_state.clone())
        .and(crate::connection::peer())
        .and(raw_query)
        .then(feed);
    let download = warp::get()
        .and(warp::path!("conflux" / "recorder" / "archives" / String))
        .and(with_state.clone())
        .and(crate::connection::peer())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .then(download);
    let report = warp::post()
        .and(warp::path!(
            "conflux" / "recorder" / "archives" / String / String
        ))
        .and(with_state)
        .and(crate::connection::peer())
        .and(raw_query)
        .and(body)
        .then(report);
    feed.or(download).unify().or(report).unify().boxed()
}

/// A refused recorder call.
#[derive(Debug)]
struct Refused(StatusCode, String);

impl Refused {
    fn reply(&self) -> warp::reply::Response {
        json(self.0, &json!({ "error": self.1 }))
    }
}

/// The integration whose secret signed `raw_query` for `call`, with a fresh `ts`.
fn authenticate(
    state: &AppState,
    call: &str,
    raw_query: &str,
    peer: Option<SocketAddr>,
) -> Result<(Arc<Integration>, Query), Refused> {
    let refuse = |status: StatusCode, why: &str| {
        tracing::warn!(?peer, call, "Recorder call refused: {why}");
        Refused(status, why.to_owned())
    };
    let signed = SignedQuery::parse(raw_query, state.config.api.algorithms)
        .map_err(|e| refuse(StatusCode::UNAUTHORIZED, &format!("checksum: {e}")))?;
    let integration = state.integration_for(call, &signed, None).ok_or_else(|| {
        refuse(
            StatusCode::UNAUTHORIZED,
            "checksum does not match any integration",
        )
    })?;
    let query =
        Query::parse(raw_query).map_err(|_| refuse(StatusCode::BAD_REQUEST, "malformed query"))?;
    let ts = query
        .get_trimmed("ts")
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "ts (unix seconds) is required"))?;
    if (store::now_ms() / 1000 - ts).abs() > MAX_SKEW_SECS {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "ts is too far from the balancer's clock",
        ));
    }
    Ok((integration, query))
}

async fn feed(
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    raw_query: String,
) -> warp::reply::Response {
    let (integration, query) = match authenticate(&state, RECORDER_FEED_CALL, &raw_query, peer) {
        Ok(found) => found,
        Err(refused) => return refused.reply(),
    };
    let since = query
        .get_trimmed("since")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let id = integration.id;
    match state.store.recorder_feed(id, since, FEED_PAGE).await {
        Ok(feed) => warp::reply::json(&feed).into_response(),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": e.to_string() }),
        ),
    }
}

/// Serves an archive the recorder's integration owns, from `Range: bytes=START-` if asked.
async fn download(
    record_id: String,
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    raw_query: String,
    headers: warp::http::HeaderMap,
) -> warp::reply::Response {
    match serve_archive(&record_id, &state, peer, &raw_query, &headers).await {
        Ok(reply) => reply,
        Err(refused) => refused.reply(),
    }
}

async fn serve_archive(
    record_id: &str,
    state: &AppState,
    peer: Option<SocketAddr>,
    raw_query: &str,
    headers: &warp::http::HeaderMap,
) -> Result<warp::reply::Response, Refused> {
    let (integration, _) = authenticate(state, RECORDER_ARCHIVE_CALL, raw_query, peer)?;
    if !transfer::is_safe_record_id(record_id) {
        return Err(Refused(StatusCode::BAD_REQUEST, "bad recording id".into()));
    }
    let (id, rid) = (integration.id, record_id.to_owned());
    let waiting = state
        .store
        .archive_waiting(id, &rid)
        .await
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !waiting {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            format!("no archive {record_id} waiting for this integration"),
        ));
    }
    let missing = |_| Refused(StatusCode::NOT_FOUND, "archive file missing".into());
    let path = super::path(&state.config, record_id);
    let size = tokio::fs::metadata(&path).await.map_err(missing)?.len();
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let start = match range.as_deref().map(parse_range) {
        None => 0,
        Some(Some(start)) if start < size || (start == 0 && size == 0) => start,
        Some(_) => {
            let mut reply = json(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &json!({ "error": "range not satisfiable" }),
            );
            if let Ok(v) = format!("bytes */{size}").parse() {
                reply.headers_mut().insert("content-range", v);
            }
            return Ok(reply);
        }
    };
    let mut file = tokio::fs::File::open(&path).await.map_err(missing)?;
    use tokio::io::AsyncSeekExt;
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut reply =
        warp::reply::stream(ReaderStream::with_capacity(file, 256 * 1024)).into_response();
    let headers = reply.headers_mut();
    let set = |headers: &mut warp::http::HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    };
    set(headers, "content-type", "application/octet-stream".into());
    set(headers, "accept-ranges", "bytes".into());
    set(headers, "content-length", (size - start).to_string());
    if range.is_some() {
        set(
            headers,
            "content-range",
            format!("bytes {start}-{}/{size}", size.saturating_sub(1)),
        );
        *reply.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(reply)
}

/// The start of a `bytes=START-` range (the only form recorders send).
fn parse_range(value: &str) -> Option<u64> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    if !end.trim().is_empty() {
        return None;
    }
    start.trim().parse().ok()
}

async fn report(
    record_id: String,
    outcome: String,
    state: Arc<AppState>,
    peer: Option<SocketAddr>,
    raw_query: String,
    body: Option<Bytes>,
) -> warp::reply::Response {
    let call = match outcome.as_str() {
        "done" => RECORDER_DONE_CALL,
        "failed" => RECORDER_FAILED_CALL,
        _ => return json(StatusCode::NOT_FOUND, &json!({ "error": "unknown call" })),
    };
    let integration = match authenticate(&state, call, &raw_query, peer) {
        Ok((integration, _)) => integration,
        Err(refused) => return refused.reply(),
    };
    let Some(body) = body else {
        return json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({ "error": "body too large" }),
        );
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let id = integration.id;
    if call == RECORDER_FAILED_CALL {
        let reason: String = text.chars().take(500).collect();
        let rid = record_id.clone();
        let why = reason.clone();
        return match state.store.archive_failed(id, &rid, why).await {
            Ok(true) => {
                state.metrics.archive_refused("recorder");
                tracing::warn!(record_id, integration = %integration.name, %reason, "The recorder refused an archive.");
                super::reject(&state.config, &record_id);
                json(StatusCode::OK, &json!({ "ok": true }))
            }
            Ok(false) => json(
                StatusCode::NOT_FOUND,
                &json!({ "error": "no such archive" }),
            ),
            Err(e) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "error": e.to_string() }),
            ),
        };
    }
    let recording = match Recording::from_xml(&text) {
        Ok(r) if r.record_id == record_id => r,
        _ => {
            return json(
                StatusCode::BAD_REQUEST,
                &json!({ "error": "the body must be this recording's <recording> element" }),
            )
        }
    };
    let (rid, recording_state, xml) = (
        record_id.clone(),
        recording.state.clone(),
        recording.to_element().to_xml(),
    );
    match state
        .store
        .archive_processed(id, &rid, recording_state, xml)
        .await
    {
        Ok(true) => {
            tracing::info!(record_id, integration = %integration.name, "Recording available on its recorder.");
            super::discard(&state.config, &record_id);
            let state = state.clone();
            tokio::spawn(async move {
                crate::callbacks::relay_ready(&state, &integration, &recording).await;
            });
            json(StatusCode::OK, &json!({ "ok": true }))
        }
        Ok(false) => json(
            StatusCode::GONE,
            &json!({ "error": "the recording was deleted meanwhile" }),
        ),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": e.to_string() }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn open_ended_ranges_only() {
        assert_eq!(parse_range("bytes=100-"), Some(100));
        assert_eq!(parse_range("bytes=0-"), Some(0));
        assert_eq!(parse_range("bytes=0-10"), None);
        assert_eq!(parse_range("items=1-"), None);
    }
}
