//! The callbacks a BBB node makes from its meetings' metadata, sent in the background (failures
//! are logged, never retried, as BBB does):
//! - meeting ended (`meta_endCallbackUrl`): a GET of the URL with `meetingID` and
//!   `recordingmarks` appended, unsigned;
//! - analytics (`meta_analytics-callback-url`), once the meeting ended: a POST of the learning
//!   dashboard's JSON with `Authorization: Bearer`, an HS512 token of the node's secret;
//! - recording ready (`meta_bbb-recording-ready-url`, else `meta_bn-recording-ready-url`): a POST
//!   of the form field `signed_parameters`, an HS256 token of the node's secret holding
//!   `meeting_id` and `record_id`.

use conflux_shared::query::encode;
use conflux_shared::transfer::{jwt, JwtAlg};
use serde_json::json;

use super::state::Meeting;
use super::Sim;

/// The meeting-ended and analytics callbacks of `meeting`, which just ended.
pub(crate) fn meeting_ended(sim: &Sim, meeting: &Meeting) {
    let meta = |key: &str| {
        meeting
            .metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    if let Some(url) = meta("endcallbackurl") {
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{url}{sep}recordingmarks=false&meetingID={}",
            encode(&meeting.meeting_id)
        );
        send("meeting-ended", http().get(url));
    }
    if let Some(url) = meta("analytics-callback-url") {
        let token = jwt(
            JwtAlg::Hs512,
            &sim.config.secret,
            &json!({ "exp": conflux_shared::date::now_ms() / 1000 + 86_400 }),
        );
        let data = json!({
            "version": "1.0",
            "meeting_id": meeting.meeting_id,
            "internal_meeting_id": meeting.internal_id,
            "data": {
                "metadata": { "meeting_name": meeting.name },
                "duration": meeting.end_time.saturating_sub(meeting.start_time) / 1000,
                "attendees": [],
            },
        });
        send("analytics", http().post(url).bearer_auth(token).json(&data));
    }
}

/// The recording-ready callback of a recording of the meeting with `metadata`.
pub(crate) fn recording_ready(
    sim: &Sim,
    meeting_id: &str,
    metadata: &[(String, String)],
    record_id: &str,
) {
    let url = ["bbb-recording-ready-url", "bn-recording-ready-url"]
        .iter()
        .find_map(|key| metadata.iter().find(|(k, _)| k == key));
    if let Some((_, url)) = url {
        let token = jwt(
            JwtAlg::Hs256,
            &sim.config.secret,
            &json!({ "meeting_id": meeting_id, "record_id": record_id }),
        );
        send(
            "recording-ready",
            http()
                .post(url.clone())
                .form(&[("signed_parameters", token)]),
        );
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

fn send(kind: &'static str, request: reqwest::RequestBuilder) {
    tokio::spawn(async move {
        match request.send().await {
            Ok(answer) => tracing::info!(kind, status = answer.status().as_u16(), "Callback sent."),
            Err(e) => tracing::warn!(kind, error = %e, "Callback failed."),
        }
    });
}
