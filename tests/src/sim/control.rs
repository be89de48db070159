//! The simulator's control API (`/sim/...`, JSON), for tests and the demo:
//!
//! - `GET  /sim/status`: name, version, counts and the current fault.
//! - `POST /sim/meetings/{meetingID}/participants` `{"fullName","role","audio","video","userID"}`:
//!   a participant joins (audio `none|voice|listen`, video = number of camera streams).
//! - `PATCH /sim/meetings/{meetingID}/participants/{userID}` `{"audio","video","presenter"}`.
//! - `DELETE /sim/meetings/{meetingID}/participants/{userID}`: the participant leaves.
//! - `POST /sim/meetings/{meetingID}/end`: the meeting ends by itself (not forcibly).
//! - `POST /sim/meetings/{meetingID}/recording` `{"size_bytes"}`: a recorded meeting's recording
//!   is finished: it is listed by getRecordings and written to `--recordings-dir`.
//! - `POST /sim/fault` `{"mode":"ok|slow|error|hang","delay_ms"}`: how the BBB API misbehaves.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

use super::recordings::write_folder;
use super::state::{Audio, Fault, Role, User};
use super::{too_large, Sim};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Join {
    full_name: String,
    #[serde(default = "viewer")]
    role: Role,
    #[serde(default)]
    audio: Audio,
    #[serde(default)]
    video: u32,
    #[serde(rename = "userID")]
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    audio: Option<Audio>,
    video: Option<u32>,
    presenter: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Produce {
    #[serde(default)]
    size_bytes: usize,
}

fn viewer() -> Role {
    Role::Viewer
}

pub(crate) fn routes(sim: Arc<Sim>) -> warp::filters::BoxedFilter<(Response,)> {
    warp::path("sim")
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::body::stream())
        .then(
            move |tail: warp::path::Tail, method: warp::http::Method, body| {
                let sim = sim.clone();
                async move {
                    let Some(body) = conflux_shared::body::read_limited(body, 64 * 1024)
                        .await
                        .ok()
                    else {
                        return too_large();
                    };
                    let segments: Vec<String> = tail
                        .as_str()
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            percent_encoding::percent_decode_str(s)
                                .decode_utf8_lossy()
                                .into_owned()
                        })
                        .collect();
                    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
                    match handle(&sim, method.as_str(), &segments, &body) {
                        Ok(value) => warp::reply::json(&value).into_response(),
                        Err((status, message)) => warp::reply::with_status(
                            warp::reply::json(&json!({ "error": message })),
                            status,
                        )
                        .into_response(),
                    }
                }
            },
        )
        .boxed()
}

type Outcome = Result<serde_json::Value, (StatusCode, String)>;

fn handle(sim: &Sim, method: &str, path: &[&str], body: &[u8]) -> Outcome {
    match (method, path) {
        ("GET", ["status"]) => Ok(status(sim)),
        ("POST", ["fault"]) => {
            let fault: Fault = parse(body)?;
            sim.fault.send_replace(fault);
            tracing::info!(?fault, "Fault injected.");
            Ok(json!({ "fault": fault }))
        }
        ("POST", ["meetings", id, "participants"]) => {
            let join: Join = parse(body)?;
            with_meeting(sim, id, |m| {
                let mut user = User::new(join.full_name, join.role, join.user_id);
                user.audio = join.audio;
                user.video_streams = join.video;
                let user_id = user.user_id.clone();
                m.add_user(user);
                Ok(json!({ "userID": user_id }))
            })
        }
        ("PATCH", ["meetings", id, "participants", user_id]) => {
            let change: Change = parse(body)?;
            with_meeting(sim, id, |m| {
                let user = m
                    .users
                    .iter_mut()
                    .find(|u| u.user_id == *user_id || u.internal_user_id == *user_id)
                    .ok_or((StatusCode::NOT_FOUND, format!("no participant {user_id}")))?;
                user.audio = change.audio.unwrap_or(user.audio);
                user.video_streams = change.video.unwrap_or(user.video_streams);
                user.is_presenter = change.presenter.unwrap_or(user.is_presenter);
                Ok(serde_json::to_value(&*user).unwrap_or_default())
            })
        }
        ("DELETE", ["meetings", id, "participants", user_id]) => with_meeting(sim, id, |m| {
            if m.remove_user(user_id) {
                Ok(json!({ "left": user_id }))
            } else {
                Err((StatusCode::NOT_FOUND, format!("no participant {user_id}")))
            }
        }),
        ("POST", ["meetings", id, "end"]) => with_meeting(sim, id, |m| {
            m.end(false);
            super::callbacks::meeting_ended(sim, m);
            Ok(json!({ "ended": m.meeting_id }))
        }),
        ("POST", ["meetings", id, "recording"]) => {
            let produce: Produce = if body.is_empty() {
                Produce::default()
            } else {
                parse(body)?
            };
            produce_recording(sim, id, produce.size_bytes)
        }
        _ => Err((
            StatusCode::NOT_FOUND,
            format!("no control call {method} /sim/{}", path.join("/")),
        )),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

fn with_meeting(
    sim: &Sim,
    id: &str,
    f: impl FnOnce(&mut super::state::Meeting) -> Outcome,
) -> Outcome {
    let mut inner = sim.lock();
    let meeting = inner
        .meetings
        .get_mut(id)
        .filter(|m| !m.is_ended())
        .ok_or((StatusCode::NOT_FOUND, format!("no running meeting {id}")))?;
    f(meeting)
}

fn status(sim: &Sim) -> serde_json::Value {
    let inner = sim.lock();
    let live = inner.meetings.values().filter(|m| !m.is_ended());
    let (mut meetings, mut users) = (0, 0);
    for m in live {
        meetings += 1;
        users += m.users.len();
    }
    json!({
        "name": sim.config.name,
        "version": sim.config.version,
        "meetings": meetings,
        "users": users,
        "recordings": inner.recordings.len(),
        "calls": inner.calls,
        "fault": *sim.fault.borrow(),
    })
}

/// Finishes the recording of meeting `id` (live or ended; it must have been created with
/// `record=true`).
fn produce_recording(sim: &Sim, id: &str, size: usize) -> Outcome {
    let (recording, metadata) = {
        let inner = sim.lock();
        let meeting = inner
            .meetings
            .get(id)
            .or_else(|| inner.ended.iter().rev().find(|m| m.meeting_id == id))
            .ok_or((StatusCode::NOT_FOUND, format!("no meeting {id}")))?;
        if !meeting.record {
            return Err((
                StatusCode::CONFLICT,
                format!("meeting {id} was not created with record=true"),
            ));
        }
        let end = if meeting.end_time > 0 {
            meeting.end_time
        } else {
            conflux_shared::date::now_ms()
        };
        let mut recording = meeting.recording(
            &sim.public_url,
            end.saturating_sub(meeting.start_time) / 60_000,
        );
        recording.end_time = end;
        (recording, meeting.metadata.clone())
    };
    let path = match &sim.config.recordings_dir {
        Some(dir) => Some(write_folder(dir, &recording, size).map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("writing the recording: {e}"),
            )
        })?),
        None => None,
    };
    let record_id = recording.record_id.clone();
    let meeting_id = recording.meeting_id.clone();
    sim.lock().recordings.insert(record_id.clone(), recording);
    super::callbacks::recording_ready(sim, &meeting_id, &metadata, &record_id);
    Ok(json!({ "recordID": record_id, "path": path }))
}
