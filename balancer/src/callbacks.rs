//! The callbacks BBB nodes make for a meeting, relayed to the front-end that asked for them
//! (when `api.public_url` is set). A front-end verifies a callback with its own secret, which a
//! node does not have: so create hands the node the balancer's URL instead of the front-end's
//! (the front-end's stays in the create's stored parameters), the node calls the balancer, and
//! the balancer checks the node's signature and calls the front-end, signed with the
//! integration's secret. Under `/conflux/callback/<integration id>/`:
//!
//! - `analytics` (`meta_analytics-callback-url`): BBB POSTs the learning dashboard's JSON with
//!   `Authorization: Bearer`, an HS512 token of the node's secret; the same body goes to the
//!   front-end with a fresh HS512 token (a day's `exp`, as Scalelite signs it) of each of the
//!   integration's secrets in turn until one is accepted.
//! - `recording-ready` (`meta_bbb-recording-ready-url` and its older names, for recordings the
//!   node keeps): BBB POSTs `signed_parameters`, an HS256 token of the node's secret; the
//!   recording is read from the node into the store first, so the front-end's getRecordings
//!   finds it, then the callback is relayed ([`relay_ready`], which also calls the front-end
//!   when a recording reached the integration's recording server).
//! - `ended/<tag>` (`meta_endCallbackUrl`): BBB's GET carries no signature, so the URL carries
//!   a tag of the meeting under the integration's secret; the meeting is asked for again on its
//!   node (getMeetings shows it ended within a second) and the GET is relayed with the
//!   parameters BBB appended (`meetingID`, `recordingmarks`).
//!
//! Anything unsigned, mis-signed or about another integration's meeting is refused before a
//! request leaves the balancer. Signatures and tags are checked under the failed-checksum
//! limits of the caller's address, as the API's checksums are: a caller over its budget is
//! refused unchecked (429), so forged callbacks cost neither guesses nor CPU.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use conflux_shared::response::{Body, Recording};
use conflux_shared::transfer::{self, JwtAlg};
use conflux_shared::Query;
use conflux_store::{Integration, IntegrationId, Node};
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::hyper::body::Bytes;
use warp::{Filter, Reply};

use crate::failures::{Limits, Verdict};
use crate::state::AppState;

/// The analytics JSON of a long meeting with many users can reach megabytes.
const MAX_BODY: usize = 16 * 1024 * 1024;

const ANALYTICS_KEY: &str = "meta_analytics-callback-url";
const ENDED_KEY: &str = "meta_endCallbackUrl";
/// The name BBB 2.x reads the recording-ready URL under.
const READY_KEY: &str = "meta_bbb-recording-ready-url";

/// How a create's callback metadata reaches the node: the client's parameter names to drop and
/// the balancer's URLs to send instead. `ready` says whether the recording-ready URL goes
/// this way (not when a recording server gets the recording: the balancer calls the front-end
/// once the recorder has it).
pub fn node_metadata(
    public_url: &str,
    integration: &Integration,
    meeting_id: &str,
    params: &Query,
    ready: bool,
) -> (Vec<String>, Vec<(String, String)>) {
    let base = format!("{public_url}/conflux/callback/{}", integration.id.0);
    let tag = integration
        .secrets
        .first()
        .map(|s| transfer::meeting_tag(&s.0, meeting_id))
        .unwrap_or_default();
    let mut relayed = vec![
        (
            vec![ANALYTICS_KEY],
            ANALYTICS_KEY,
            format!("{base}/analytics"),
        ),
        (vec![ENDED_KEY], ENDED_KEY, format!("{base}/ended/{tag}")),
    ];
    if ready {
        relayed.push((
            transfer::READY_URL_KEYS.to_vec(),
            READY_KEY,
            format!("{base}/recording-ready"),
        ));
    }
    let (mut drop, mut send) = (Vec::new(), Vec::new());
    for (keys, name, url) in relayed {
        let sent: Vec<String> = params
            .params()
            .iter()
            .filter(|p| keys.iter().any(|k| p.name.eq_ignore_ascii_case(k)))
            .filter(|p| !p.value.trim().is_empty())
            .map(|p| p.name.clone())
            .collect();
        if !sent.is_empty() {
            drop.extend(sent);
            send.push((name.to_owned(), url));
        }
    }
    (drop, send)
}

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(warp::reply::Response,)> {
    let with_state = warp::any().map(move || state.clone());
    let caller = with_state
        .clone()
        .and(crate::connection::peer())
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .map(
            |state: Arc<AppState>, peer: Option<SocketAddr>, xff: Option<String>| {
                crate::connection::client_ip(peer, xff.as_deref(), &state.config.trusted_proxies)
            },
        );
    let body = warp::body::stream().then(|body| async move {
        conflux_shared::body::read_limited(body, MAX_BODY)
            .await
            .ok()
    });
    let analytics = warp::post()
        .and(warp::path!("conflux" / "callback" / i64 / "analytics"))
        .and(with_state.clone())
        .and(caller.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(body)
        .then(analytics);
    let ready = warp::post()
        .and(warp::path!(
            "conflux" / "callback" / i64 / "recording-ready"
        ))
        .and(with_state.clone())
        .and(caller.clone())
        .and(body)
        .then(recording_ready);
    let ended = warp::get()
        .and(warp::path!("conflux" / "callback" / i64 / "ended" / String))
        .and(with_state)
        .and(caller)
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(ended);
    analytics.or(ready).unify().or(ended).unify().boxed()
}

async fn analytics(
    id: i64,
    state: Arc<AppState>,
    caller: Option<IpAddr>,
    authorization: Option<String>,
    body: Option<Bytes>,
) -> warp::reply::Response {
    let Some(integration) = integration(&state, id) else {
        return refuse(StatusCode::NOT_FOUND, "no such integration");
    };
    let Some(body) = body else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "analytics too large");
    };
    let token = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default();
    let (node, _) = match checked(&state, caller, || signed_by_node(&state, token)) {
        Ok(signed) => signed,
        Err(refused) => return refused.reply(),
    };
    let meeting_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["meeting_id"].as_str().map(str::to_owned));
    let Some(meeting_id) = meeting_id else {
        return refuse(StatusCode::BAD_REQUEST, "no meeting_id");
    };
    let Some(url) = front_end_url(&state, &integration, &node, &meeting_id, &[ANALYTICS_KEY]).await
    else {
        return refuse(StatusCode::NOT_FOUND, "no analytics URL for this meeting");
    };
    tokio::spawn(async move {
        let exp = conflux_store::now_ms() / 1000 + 86_400;
        relay(
            &state,
            "Analytics",
            &url,
            &integration,
            &[],
            |client, secret| {
                let token = transfer::jwt(JwtAlg::Hs512, secret, &json!({ "exp": exp }));
                client
                    .post(&url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body.clone())
            },
        )
        .await;
    });
    StatusCode::NO_CONTENT.into_response()
}

async fn recording_ready(
    id: i64,
    state: Arc<AppState>,
    caller: Option<IpAddr>,
    body: Option<Bytes>,
) -> warp::reply::Response {
    let Some(integration) = integration(&state, id) else {
        return refuse(StatusCode::NOT_FOUND, "no such integration");
    };
    let form = body
        .as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|b| Query::parse(b).ok());
    let token = form
        .as_ref()
        .and_then(|f| f.get("signed_parameters"))
        .unwrap_or_default();
    let (node, claims) = match checked(&state, caller, || signed_by_node(&state, token)) {
        Ok(signed) => signed,
        Err(refused) => return refused.reply(),
    };
    let (Some(meeting_id), Some(record_id)) = (
        claims["meeting_id"].as_str().map(str::to_owned),
        claims["record_id"].as_str().map(str::to_owned),
    ) else {
        return refuse(StatusCode::BAD_REQUEST, "no meeting_id or record_id");
    };
    if !transfer::is_safe_record_id(&record_id) {
        return refuse(StatusCode::BAD_REQUEST, "not a record id");
    }
    if !owns(&state, &integration, &node, &meeting_id).await {
        return refuse(StatusCode::FORBIDDEN, "not this integration's meeting");
    }
    tokio::spawn(async move {
        let recording = fetch_recording(&state, &integration, &node, &record_id)
            .await
            .unwrap_or(Recording {
                record_id,
                meeting_id,
                ..Recording::default()
            });
        relay_ready(&state, &integration, &recording).await;
    });
    "ok".into_response()
}

async fn ended(
    id: i64,
    tag: String,
    state: Arc<AppState>,
    caller: Option<IpAddr>,
    raw_query: String,
) -> warp::reply::Response {
    let Some(integration) = integration(&state, id) else {
        return refuse(StatusCode::NOT_FOUND, "no such integration");
    };
    let meeting_id = Query::parse(&raw_query)
        .ok()
        .and_then(|q| q.get("meetingID").map(str::to_owned))
        .unwrap_or_default();
    let tagged = checked(&state, caller, || {
        integration
            .secrets
            .iter()
            .any(|s| transfer::verify_meeting_tag(&s.0, &meeting_id, &tag))
            .then_some(())
    });
    if let Err(refused) = tagged {
        return refused.reply();
    }
    // The node says what became of it: the stored meeting shows it ended.
    state.changing.mark(&meeting_id);
    let Some(url) = stored_url(&state, &integration, &meeting_id, &[ENDED_KEY]).await else {
        return refuse(
            StatusCode::NOT_FOUND,
            "no meeting-ended URL for this meeting",
        );
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}{raw_query}");
    tokio::spawn(async move {
        let Ok(client) = state.node_client.http() else {
            return;
        };
        match client.get(&url).send().await {
            Ok(answer) => {
                tracing::info!(%url, status = answer.status().as_u16(), "Meeting-ended callback relayed.")
            }
            Err(e) => tracing::warn!(%url, error = %e, "Meeting-ended callback failed."),
        }
    });
    "ok".into_response()
}

/// A refused check: its status and why.
struct Refused(StatusCode, &'static str);

impl Refused {
    fn reply(self) -> warp::reply::Response {
        refuse(self.0, self.1)
    }
}

/// Runs `check` (a node's signature, a meeting's tag) under the caller's failed-checksum
/// budget: over it, refused unchecked (429); a failed check counts (401).
fn checked<T>(
    state: &AppState,
    caller: Option<IpAddr>,
    check: impl FnOnce() -> Option<T>,
) -> Result<T, Refused> {
    let failures = &state.failures;
    if failures.checksum.verdict(caller, || None) == Verdict::Refuse {
        return Err(Refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed callbacks",
        ));
    }
    check().ok_or_else(|| {
        failures.failed(&state.store, Limits::Checksum, caller, None);
        Refused(StatusCode::UNAUTHORIZED, "not signed by a node of the pool")
    })
}

fn integration(state: &AppState, id: i64) -> Option<Arc<Integration>> {
    state
        .integrations
        .load()
        .iter()
        .find(|i| i.id == IntegrationId(id))
        .cloned()
}

/// The node whose secret signed `token` (HS256 or HS512, unexpired), with the claims.
fn signed_by_node(state: &AppState, token: &str) -> Option<(Arc<Node>, Value)> {
    if token.is_empty() {
        return None;
    }
    let now = conflux_store::now_ms() / 1000;
    state
        .nodes
        .load()
        .nodes
        .iter()
        .find_map(|n| Some((n.clone(), transfer::jwt_claims(&n.secret.0, token, now)?)))
}

/// Whether `integration` created `meeting_id` on `node` last.
async fn owns(state: &AppState, integration: &Integration, node: &Node, meeting_id: &str) -> bool {
    match state.store.owner_of(meeting_id, Some(node.id)).await {
        Ok(owner) => owner == Some(integration.id),
        Err(e) => {
            tracing::error!(error = %e, "Could not read a meeting's owner.");
            false
        }
    }
}

/// The front-end's URL under one of `keys` in the create of `meeting_id`, when `integration`
/// created it on `node`.
async fn front_end_url(
    state: &AppState,
    integration: &Integration,
    node: &Node,
    meeting_id: &str,
    keys: &[&str],
) -> Option<String> {
    if !owns(state, integration, node, meeting_id).await {
        return None;
    }
    stored_url(state, integration, meeting_id, keys).await
}

/// The front-end's URL under one of `keys` in the stored create of `meeting_id`.
async fn stored_url(
    state: &AppState,
    integration: &Integration,
    meeting_id: &str,
    keys: &[&str],
) -> Option<String> {
    match state.store.created_params(meeting_id, integration.id).await {
        Ok(params) => params.and_then(|p| param(&p, keys)),
        Err(e) => {
            tracing::error!(error = %e, "Could not read the meeting's create parameters.");
            None
        }
    }
}

/// Sends the front-end the request `signed` builds with each of the integration's secrets in
/// turn, until one is accepted (2xx); a status in `final_refusals`, or no answer, stops.
async fn relay(
    state: &AppState,
    what: &'static str,
    url: &str,
    integration: &Integration,
    final_refusals: &[u16],
    signed: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) {
    let client = match state.node_client.http() {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "No HTTP client for the callback."),
    };
    for secret in &integration.secrets {
        let status = match signed(&client, &secret.0).send().await {
            Ok(answer) => answer.status().as_u16(),
            Err(e) => return tracing::warn!(what, %url, error = %e, "Callback failed."),
        };
        if (200..300).contains(&status) {
            return tracing::info!(what, %url, "Callback relayed.");
        }
        tracing::warn!(what, %url, status, "Callback refused.");
        if final_refusals.contains(&status) {
            return;
        }
    }
}

/// The first of `keys` (compared case-insensitively, as BBB lower-cases metadata) with an
/// http(s) URL in stored create parameters.
fn param(params: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|u| conflux_shared::signed_url::is_web_url(u))
            .map(str::to_owned)
    })
}

/// POSTs `signed_parameters` (an HS256 JWT of meeting_id and record_id, as BBB sends it) to the
/// recording-ready URL the front-end gave at create, trying the integration's secrets in turn
/// until one is accepted; 404 and 410 stop (Scalelite's rules).
pub async fn relay_ready(state: &AppState, integration: &Integration, recording: &Recording) {
    let keys = transfer::READY_URL_KEYS;
    let Some(url) = stored_url(state, integration, &recording.meeting_id, &keys).await else {
        return;
    };
    let claims = json!({
        "meeting_id": recording.meeting_id,
        "record_id": recording.record_id,
    });
    relay(
        state,
        "Recording-ready",
        &url,
        integration,
        &[404, 410],
        |client, secret| {
            let token = transfer::jwt(JwtAlg::Hs256, secret, &claims);
            client.post(&url).form(&[("signed_parameters", token)])
        },
    )
    .await;
}

/// Reads the recording from its node into the store, filed under `integration`.
async fn fetch_recording(
    state: &AppState,
    integration: &Integration,
    node: &Node,
    record_id: &str,
) -> Option<Recording> {
    let query = format!(
        "recordID={}&state=any",
        conflux_shared::query::encode(record_id)
    );
    let answer = state
        .node_client
        .call(
            node,
            "getRecordings",
            &query,
            None,
            "Unable to access server.",
        )
        .await
        .ok()?;
    let Ok(Body::Recordings(list)) = answer.parse("Unable to access server.").map(|r| r.body)
    else {
        return None;
    };
    let recording = list.into_iter().find(|r| r.record_id == record_id)?;
    let record =
        conflux_store::recordings::RecordingRecord::on_node(&recording, integration.id, node.id);
    let stored = state
        .store
        .upsert_recordings(vec![(record, recording.start_time, recording.end_time)])
        .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, record_id, "Could not store a ready recording.");
    }
    Some(recording)
}

/// A refusal, logged.
fn refuse(status: StatusCode, why: &str) -> warp::reply::Response {
    tracing::warn!(status = status.as_u16(), why, "Callback refused.");
    warp::reply::with_status(why.to_owned(), status).into_response()
}
