//! The Mconf/BBB 0.8 mobile API (`/bigbluebutton/demo/mobile.jsp` and `/demo/mobile.jsp`):
//! getTimestamp, getMeetings, create and join, authenticated with an integration's mobile salt
//! (the first five characters of its secret): `checksum = sha1(query up to the last
//! "&checksum=" + salt)`, compared case-sensitively, with a 60-second timestamp window.

use std::sync::Arc;

use conflux_shared::response::{messages, Body, Message};
use conflux_shared::{checksum, Algorithm, Element, Query, Response};

use super::request::ApiRequest;
use super::request::{limited, Refusal};
use super::{create, join, meetings};
use crate::failures::Api;
use crate::state::AppState;
use conflux_store::Integration;

/// What the mobile endpoint answers.
pub enum MobileAnswer {
    Xml(Element),
    Text(String),
}

const TIMESTAMP_WINDOW_SECS: i64 = 60;

const fn m(key: &'static str, text: &'static str) -> Message {
    Message { key, text }
}

const CHECKSUM: Message = m(
    "checksumError",
    "You did not pass the checksum security check.",
);
const INVALID_ACTION: Message = m("invalidAction", "The requested URL is unavailable.");
const INVALID_TIMESTAMP: Message = m("invalidTimestamp", "You did not pass the timestamp check.");
const MISSING_TIMESTAMP: Message = m(
    "missingParamTimestamp",
    "You must specify the timestamp provided by the server when you called the method getTimestamp.",
);
const MISSING_MEETING_ID: Message = m(
    "missingParamMeetingID",
    "You must specify a meeting ID for the meeting.",
);
const MISSING_FULL_NAME: Message = m(
    "missingParamFullName",
    "You must specify a name for the attendee who will be joining the meeting.",
);
const INVALID_PASSWORD: Message = m(
    "invalidPassword",
    "You either did not supply a password or the password supplied is neither the attendee or moderator password for this conference.",
);
const FAILED_JOIN: Message = m("failedJoin", "Couldn't join the meeting.");

/// The index under `/mobile` (Mconf-LB's answer): `<version>0.8</version>` makes Mconf's
/// mobile clients (bbb-java's `JoinServiceProxy`) use `mobile.jsp` with the 5-character salt;
/// any other version leaves them without a protocol. The main index keeps BBB 2's `2.0`.
pub fn index() -> Response {
    let mut response = Response::fields(&[("version", "0.8")]);
    if let Body::Fields(fields) = &mut response.body {
        fields.push(
            Element::new("custom")
                .with_text("name", "conflux")
                .with_text("version", env!("CARGO_PKG_VERSION")),
        );
    }
    response
}

pub async fn handle(
    state: &Arc<AppState>,
    raw_query: &str,
    client_ip: Option<std::net::IpAddr>,
    prefix: Option<&str>,
) -> MobileAnswer {
    if raw_query.is_empty() {
        return xml(Response::success(Body::Fields(Vec::new()))
            .with_message(m("mobileSupported", "This server supports mobile devices.")));
    }
    let integration = match limited(state, Api::Mobile, client_ip, prefix, || {
        authenticate(state, raw_query, prefix)
    }) {
        Ok(integration) => integration,
        Err(Refusal::Limited) => return failed(messages::TOO_MANY_FAILURES),
        Err(Refusal::Failed) => return failed(CHECKSUM),
    };
    let Ok(query) = Query::parse(raw_query) else {
        return failed(CHECKSUM);
    };
    let action = query.get("action").unwrap_or_default().to_owned();
    if action == "getTimestamp" {
        return xml(Response::fields(&[("timestamp", &now_secs().to_string())]));
    }
    if !matches!(action.as_str(), "getMeetings" | "create" | "join") {
        return failed(INVALID_ACTION);
    }
    match query.get_trimmed("timestamp").map(|t| t.parse::<i64>()) {
        None => return failed(MISSING_TIMESTAMP),
        Some(Ok(t)) if (now_secs() - t).abs() <= TIMESTAMP_WINDOW_SECS => {}
        Some(_) => return failed(INVALID_TIMESTAMP),
    }
    match action.as_str() {
        "getMeetings" => get_meetings(state, integration).await,
        "create" => create_meeting(state, &query, integration, client_ip).await,
        _ => join_meeting(state, &query, integration, client_ip).await,
    }
}

/// The integration whose mobile salt signed `raw_query` (checksum last, case-sensitive).
fn authenticate(
    state: &AppState,
    raw_query: &str,
    prefix: Option<&str>,
) -> Option<Arc<Integration>> {
    use subtle::ConstantTimeEq;
    let (signed, sum) = raw_query.rsplit_once("&checksum=")?;
    state
        .integrations
        .load()
        .iter()
        .filter(|i| prefix.is_none() || i.prefix.as_deref() == prefix)
        .find(|i| {
            i.mobile_salt().is_some_and(|salt| {
                let expected = checksum::compute(Algorithm::Sha1, "", signed, &salt);
                bool::from(expected.as_bytes().ct_eq(sum.as_bytes()))
            })
        })
        .cloned()
}

async fn get_meetings(state: &Arc<AppState>, integration: Arc<Integration>) -> MobileAnswer {
    let mut root = Element::new("meetings");
    if let Ok(Response {
        body: Body::Meetings(list),
        ..
    }) = meetings::list(state, &integration).await
    {
        for meeting in list {
            let mut e = Element::new("meeting").with_text("returncode", "SUCCESS");
            let info = Response::success(Body::Meeting(Box::new(meeting))).to_element();
            e.children.extend(info.children.into_iter().skip(1));
            root.push(e);
        }
    }
    MobileAnswer::Xml(root)
}

async fn create_meeting(
    state: &Arc<AppState>,
    query: &Query,
    integration: Arc<Integration>,
    ip: Option<std::net::IpAddr>,
) -> MobileAnswer {
    let Some(meeting_id) = query.get_trimmed("meetingID") else {
        return MobileAnswer::Text(format!(
            "Error {}: {}",
            MISSING_MEETING_ID.key, MISSING_MEETING_ID.text
        ));
    };
    let raw = format!(
        "meetingID={0}&name={0}&attendeePW=ap&moderatorPW=mp",
        conflux_shared::query::encode(&meeting_id)
    );
    let req = internal_request("create", &raw, ip);
    match create::handle(state, req, integration).await {
        Ok(r) if r.is_success() => MobileAnswer::Text(meeting_id),
        Ok(r) => MobileAnswer::Text(format!(
            "Error {}: {}",
            r.key().unwrap_or("unknownError"),
            r.text().unwrap_or_default()
        )),
        Err(e) => MobileAnswer::Text(format!("Error {}: {}", e.message_key(), e.message())),
    }
}

async fn join_meeting(
    state: &Arc<AppState>,
    query: &Query,
    integration: Arc<Integration>,
    ip: Option<std::net::IpAddr>,
) -> MobileAnswer {
    let (Some(meeting_id), Some(full_name)) = (
        query.get_trimmed("meetingID"),
        query.get_trimmed("fullName"),
    ) else {
        return failed(if query.get_trimmed("meetingID").is_none() {
            MISSING_MEETING_ID
        } else {
            MISSING_FULL_NAME
        });
    };
    let password = query.get("password").unwrap_or_default().to_owned();
    let raw = format!(
        "meetingID={}&fullName={}&password={}&redirect=false",
        conflux_shared::query::encode(&meeting_id),
        conflux_shared::query::encode(&full_name),
        conflux_shared::query::encode(&password)
    );
    let info = match state.find_route(&meeting_id).await {
        Some(_) => {
            let query = format!("meetingID={}", conflux_shared::query::encode(&meeting_id));
            let req = internal_request("getMeetingInfo", &query, ip);
            super::meeting::handle(state, req, integration.clone())
                .await
                .ok()
                .and_then(super::Answer::into_response)
        }
        None => None,
    };
    let joined = match join::handle(state, &internal_request("join", &raw, ip), integration).await {
        Ok(join::Joined::Xml(Response {
            body: Body::Joined(j),
            ..
        })) => j,
        Ok(join::Joined::Xml(_)) => return failed(INVALID_PASSWORD),
        _ => return failed(FAILED_JOIN),
    };
    let Some(Response {
        body: Body::Meeting(meeting),
        ..
    }) = info
    else {
        return failed(FAILED_JOIN);
    };
    let role = if meeting.moderator_pw.as_deref() == Some(password.as_str()) {
        "MODERATOR"
    } else {
        "VIEWER"
    };
    let e = Element::new("response")
        .with_text("returncode", "SUCCESS")
        .with_text("fullname", &full_name)
        .with_text("confname", &meeting.meeting_name)
        .with_text("meetingID", &joined.meeting_id)
        .with_text("externUserID", &joined.user_id)
        .with_text("internalUserID", &joined.user_id)
        .with_text("role", role)
        .with_text("conference", &joined.meeting_id)
        .with_text("room", &joined.meeting_id)
        .with_text("voicebridge", &meeting.voice_bridge)
        .with_text("webvoiceconf", &meeting.voice_bridge)
        .with_text("mode", "LIVE")
        .with_text("record", meeting.recording)
        .with_text("welcome", "")
        .with_text("url", &joined.url);
    MobileAnswer::Xml(e)
}

/// A BBB request made on a mobile client's behalf (already authenticated).
fn internal_request(call: &str, raw: &str, client_ip: Option<std::net::IpAddr>) -> ApiRequest {
    ApiRequest {
        call: call.into(),
        method: warp::http::Method::GET,
        params: Query::parse(raw).unwrap_or_default(),
        content_type: None,
        body: Default::default(),
        client_ip,
        user_ip: None,
        prefix: None,
        gzip: false,
    }
}

fn now_secs() -> i64 {
    conflux_store::now_ms() / 1000
}

fn xml(response: Response) -> MobileAnswer {
    MobileAnswer::Xml(response.to_element())
}

fn failed(message: Message) -> MobileAnswer {
    xml(Response::failed(message))
}
