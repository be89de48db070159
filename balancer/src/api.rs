//! The BBB API under `/bigbluebutton/api` (served by `server.rs` without warp): the request pipeline
//! (route → content type → checksum/integration → action) and the dispatch on the call name.
//! Only this module writes BBB XML to clients.

mod create;
mod error;
mod join;
mod lb_calls;
mod meeting;
mod meetings;
mod mobile;
mod params;
pub(crate) mod recordings;
mod relocate;
pub(crate) mod request;
mod scalelite;

use std::net::SocketAddr;
use std::sync::Arc;

use conflux_shared::body::BodyError;
use conflux_shared::response::messages;
use conflux_shared::{Call, Element, Query, Response};
use warp::http::{header, Method, StatusCode};
use warp::hyper::body::Bytes;
use warp::reply::Reply;

pub use error::ApiError;
use request::ApiRequest;

use crate::connection::BodyFailure;
use crate::metrics::{self, Outcome};
use crate::state::AppState;

/// Largest request body accepted (inline presentations in create/insertDocument).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The path under which the index answers what Mconf's mobile clients expect (a reserved
/// prefix: `ops::integrations::RESERVED_PREFIXES`).
const MOBILE_BASE: &str = "mobile";

/// Where a request goes, from its path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `[/PREFIX]/bigbluebutton[/api][/CALL]`
    Api {
        prefix: Option<String>,
        call: String,
    },
    /// `[/mobile][/PREFIX][/bigbluebutton]/demo/mobile.jsp`
    Mobile {
        prefix: Option<String>,
    },
    /// `/mobile[/PREFIX]/bigbluebutton[/api]`: the index mobile clients read before they
    /// choose a protocol (their server URL is the balancer's `/mobile`).
    MobileIndex,
    Health,
    /// `/scalelite/api/CALL`: Scalelite's management API.
    Scalelite {
        call: String,
    },
    /// Not the API's: the web routes answer it.
    Unknown,
}

impl Target {
    pub(crate) fn of(path: &str) -> Target {
        let path = path.trim_start_matches('/');
        if path == "health_check" {
            return Target::Health;
        }
        if let Some(call) = path.strip_prefix("scalelite/api/") {
            return Target::Scalelite {
                call: call.trim_end_matches('/').to_owned(),
            };
        }
        // Mconf mobile clients are given `https://balancer/mobile` as their server.
        let (mobile, path) = match path.strip_prefix(MOBILE_BASE) {
            Some(rest) if rest.starts_with('/') => (true, &rest[1..]),
            _ => (false, path),
        };
        let (prefix, rest) = match path.split_once('/') {
            Some((first, rest)) if first != "bigbluebutton" && first != "demo" => {
                (Some(first.to_ascii_lowercase()), rest)
            }
            _ => (None, path),
        };
        let rest = rest.trim_end_matches('/');
        if rest == "demo/mobile.jsp" || rest == "bigbluebutton/demo/mobile.jsp" {
            return Target::Mobile { prefix };
        }
        let Some(api) = rest.strip_prefix("bigbluebutton") else {
            return Target::Unknown;
        };
        let api = api.trim_start_matches('/');
        let call = api
            .strip_prefix("api")
            .map_or(api, |c| c.trim_start_matches('/'));
        if mobile && call.is_empty() {
            return Target::MobileIndex;
        }
        Target::Api {
            prefix,
            call: call.to_owned(),
        }
    }
}

/// Answers one request for `target` (anything but [`Target::Unknown`]): the BBB API, the mobile
/// API, the health check or Scalelite's API.
pub(crate) async fn serve<B>(
    state: &Arc<AppState>,
    target: Target,
    request: warp::http::Request<B>,
    peer: Option<SocketAddr>,
) -> warp::reply::Response
where
    B: hyper::body::Body<Error = BodyFailure>,
{
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let raw_query = parts.uri.query().unwrap_or("");
    let header = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let forwarded_for = header(header::HeaderName::from_static("x-forwarded-for"));
    let client_ip =
        crate::connection::client_ip(peer, forwarded_for, &state.config.trusted_proxies);
    let user_ip = request::named_user(forwarded_for);
    let host = header(header::HOST);
    let full_type = header(header::CONTENT_TYPE).map(String::from);
    let content_type = full_type.as_deref().map(conflux_shared::body::media_type);
    let body = async {
        if body.is_end_stream() {
            return Ok(Bytes::new());
        }
        if body.size_hint().lower() > MAX_BODY as u64 {
            return Err(BodyError::TooLarge);
        }
        conflux_shared::body::read_limited(body.into_data_stream(), MAX_BODY).await
    };
    match target {
        Target::Health => "success".into_response(),
        Target::MobileIndex => xml(&mobile::index()),
        Target::Unknown => StatusCode::NOT_FOUND.into_response(),
        Target::Mobile { prefix } => {
            let prefix = state.request_prefix(prefix, host);
            mobile_reply(mobile::handle(state, raw_query, client_ip, prefix.as_deref()).await)
        }
        Target::Scalelite { call } => {
            let body = match body.await {
                Ok(body) => body,
                Err(e) => {
                    let (status, _) = body_refusal(&e);
                    let error = serde_json::json!({ "error": e.to_string() });
                    return warp::reply::with_status(warp::reply::json(&error), status)
                        .into_response();
                }
            };
            scalelite::handle(
                state,
                &parts.method,
                &call,
                raw_query,
                content_type.as_deref(),
                &body,
            )
            .await
        }
        Target::Api { prefix, call } => {
            let body = match body.await {
                Ok(body) => body,
                Err(e) => {
                    let (status, message) = body_refusal(&e);
                    let reply = xml(&Response::failed_with(message.key, message.text));
                    return warp::reply::with_status(reply, status).into_response();
                }
            };
            let prefix = state.request_prefix(prefix, host);
            let form = match content_type.as_deref() {
                Some("multipart/form-data") => multipart_fields(full_type, &body).await,
                _ => None,
            };
            let req = build_request(
                call,
                parts.method,
                raw_query,
                content_type,
                body,
                client_ip,
                form,
            )
            .map(|r| ApiRequest {
                prefix,
                user_ip,
                gzip: request::accepts_gzip(header(header::ACCEPT_ENCODING)),
                ..r
            });
            handle(state, req).await
        }
    }
}

/// The text fields of a multipart/form-data body, as a form-encoded query (Scalelite reads
/// parameters and the checksum from them); files are left to the node. None when the body is
/// not a well-formed multipart document.
async fn multipart_fields(content_type: Option<String>, body: &Bytes) -> Option<String> {
    let boundary = multer::parse_boundary(content_type?).ok()?;
    let chunk: Result<Bytes, std::convert::Infallible> = Ok(body.clone());
    let mut parts = multer::Multipart::new(futures_util::stream::once(async { chunk }), boundary);
    let mut fields = Vec::new();
    while let Some(field) = parts.next_field().await.ok()? {
        if field.file_name().is_some() {
            continue;
        }
        let Some(name) = field.name().map(String::from) else {
            continue;
        };
        let value = field.text().await.ok()?;
        fields.push(format!(
            "{}={}",
            conflux_shared::query::encode(&name),
            conflux_shared::query::encode(&value)
        ));
    }
    Some(fields.join("&"))
}

/// The HTTP status and BBB message for a body that could not be read: too large (413), too slow
/// (408) or malformed, e.g. a broken chunked encoding (400).
fn body_refusal(error: &BodyError<BodyFailure>) -> (StatusCode, messages::Message) {
    match error {
        BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, messages::BODY_TOO_LARGE),
        BodyError::Read(e) if e.is_timeout() => {
            (StatusCode::REQUEST_TIMEOUT, messages::BODY_TIMEOUT)
        }
        BodyError::Read(_) => (StatusCode::BAD_REQUEST, messages::BODY_MALFORMED),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(call = %req.as_ref().map_or("", |r| r.call.as_str())))]
async fn handle(state: &Arc<AppState>, req: Result<ApiRequest, ApiError>) -> warp::reply::Response {
    let started = std::time::Instant::now();
    let (call, answer) = match req {
        Ok(req) => (metrics::call_label(&req.call), dispatch(state, req).await),
        Err(e) => ("other", Err(e)),
    };
    let outcome = match &answer {
        Ok(Answer::Xml(r)) if r.is_success() => Outcome::Success,
        Ok(Answer::Raw(_) | Answer::Json(_) | Answer::Gzip(_)) => Outcome::Proxied,
        Ok(Answer::Redirect(_)) => Outcome::Redirect,
        Ok(Answer::Xml(_)) | Err(_) => Outcome::Failed,
    };
    state.metrics.observe(call, outcome, started.elapsed());
    match answer {
        Ok(Answer::Xml(response)) => xml(&response),
        Ok(Answer::Raw(body)) => xml_bytes(body),
        Ok(Answer::Gzip(body)) => {
            let mut reply = xml_bytes(body);
            let headers = reply.headers_mut();
            headers.insert(
                header::CONTENT_ENCODING,
                header::HeaderValue::from_static("gzip"),
            );
            headers.insert(
                header::VARY,
                header::HeaderValue::from_static("Accept-Encoding"),
            );
            reply
        }
        Ok(Answer::Json(body)) => {
            let mut reply = warp::reply::Response::new(body.into());
            reply.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            reply
        }
        Ok(Answer::Redirect(location)) => {
            let reply = warp::reply::with_header(warp::reply(), header::LOCATION, location);
            warp::reply::with_status(reply, StatusCode::FOUND).into_response()
        }
        Err(e) => xml(&e.into_response()),
    }
}

/// Scalelite's answer to a path it does not serve: BBB's `unsupportedRequest` (HTTP 200), never
/// an empty 404, so a BBB client that took a wrong URL gets an error it can read.
pub(crate) fn unsupported() -> warp::reply::Response {
    xml(&Response::failed_with(
        messages::UNSUPPORTED_REQUEST.key,
        messages::UNSUPPORTED_REQUEST.text.to_owned(),
    ))
}

/// What a call answers.
pub(crate) enum Answer {
    Xml(Response),
    /// A node's XML answer passed on unchanged.
    Raw(Bytes),
    /// A node's JSON answer passed on unchanged.
    Json(Bytes),
    /// An XML answer gzipped, for a caller that accepts gzip.
    Gzip(Bytes),
    Redirect(String),
}

fn build_request(
    call: String,
    method: Method,
    raw_query: &str,
    content_type: Option<String>,
    body: Bytes,
    client_ip: Option<std::net::IpAddr>,
    form: Option<String>,
) -> Result<ApiRequest, ApiError> {
    let mut params = Query::parse(raw_query)
        .map_err(|_| ApiError::Bbb(messages::validation("Request not recognized")))?;
    let form = match content_type.as_deref() {
        Some("application/x-www-form-urlencoded") if !body.is_empty() => {
            std::str::from_utf8(&body).ok().map(String::from)
        }
        Some("multipart/form-data") if !body.is_empty() => form,
        _ => Some(String::new()),
    };
    let not_recognized = || ApiError::Bbb(messages::validation("Request not recognized"));
    let form = form.ok_or_else(not_recognized)?;
    if !form.is_empty() {
        let form = Query::parse(&form).map_err(|_| not_recognized())?;
        if form
            .params()
            .iter()
            .any(|p| p.name != "checksum" && params.contains(&p.name))
        {
            return Err(ApiError::Bbb(messages::CHECKSUM_ERROR));
        }
        params.extend_from(form);
    }
    Ok(ApiRequest {
        call,
        method,
        params,
        content_type,
        body,
        client_ip,
        user_ip: None,
        prefix: None,
        gzip: false,
    })
}

async fn dispatch(state: &Arc<AppState>, req: ApiRequest) -> Result<Answer, ApiError> {
    let call = Call::from_name(&req.call)
        .filter(|c| *c == Call::Index || c.allows(req.method.as_str()))
        .ok_or(ApiError::Bbb(messages::UNSUPPORTED_REQUEST))?;
    if call == Call::Index {
        return Ok(Answer::Xml(index(state)));
    }
    request::check_content_type(&req)?;
    // Scalelite answers these without looking at the checksum.
    let api = &state.config.api;
    if call == Call::GetMeetings && api.get_meetings_disabled {
        return Ok(Answer::Xml(meetings::disabled()));
    }
    let recording_call = matches!(
        call,
        Call::GetRecordings
            | Call::PublishRecordings
            | Call::DeleteRecordings
            | Call::UpdateRecordings
            | Call::GetRecordingTextTracks
    );
    if recording_call && api.recording_disabled {
        return Ok(Answer::Xml(recordings::disabled(&req.call)));
    }
    let authenticated = request::authenticate(state, &req);
    if call == Call::Join {
        return Ok(join::answer(state, req, authenticated).await);
    }
    let integration = authenticated?;
    let response = match call {
        Call::Create => create::handle(state, req, integration).await?,
        Call::GetMeetings => return meetings::handle(state, integration, req.gzip).await,
        Call::GetServers => lb_calls::get_servers(state),
        Call::GetMeetingEvents => lb_calls::get_meeting_events(state, &req, integration).await?,
        Call::GetRecordings
        | Call::PublishRecordings
        | Call::DeleteRecordings
        | Call::UpdateRecordings
        | Call::GetRecordingTextTracks => return recordings::handle(state, req, integration).await,
        Call::Index
        | Call::Join
        | Call::End
        | Call::IsMeetingRunning
        | Call::GetMeetingInfo
        | Call::InsertDocument
        | Call::SendChatMessage => return meeting::handle(state, req, integration).await,
    };
    Ok(Answer::Xml(response))
}

fn index(state: &AppState) -> Response {
    let mut response = Response::fields(&[
        ("version", "2.0"),
        ("apiVersion", "2.0"),
        ("bbbVersion", ""),
    ]);
    if !state.config.api.build_number.is_empty() {
        if let conflux_shared::Body::Fields(fields) = &mut response.body {
            fields.push(Element::text(
                "build",
                state.config.api.build_number.clone(),
            ));
        }
    }
    response
}

fn mobile_reply(answer: mobile::MobileAnswer) -> warp::reply::Response {
    match answer {
        mobile::MobileAnswer::Xml(e) => {
            warp::reply::with_header(e.to_xml(), header::CONTENT_TYPE, "text/xml;charset=utf-8")
                .into_response()
        }
        mobile::MobileAnswer::Text(t) => t.into_response(),
    }
}

impl Answer {
    /// The answer as a typed response (redirects have none).
    fn into_response(self) -> Option<Response> {
        match self {
            Answer::Xml(r) => Some(r),
            Answer::Raw(body) => std::str::from_utf8(&body)
                .ok()
                .and_then(|t| Response::from_xml(t).ok()),
            Answer::Redirect(_) | Answer::Json(_) | Answer::Gzip(_) => None,
        }
    }
}

fn xml_bytes(body: Bytes) -> warp::reply::Response {
    let mut reply = warp::reply::Response::new(body.into());
    let headers = reply.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/xml;charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    reply
}

fn xml(response: &Response) -> warp::reply::Response {
    let reply = warp::reply::with_header(
        response.to_xml(),
        header::CONTENT_TYPE,
        "text/xml;charset=utf-8",
    );
    warp::reply::with_header(reply, header::CACHE_CONTROL, "no-cache").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(prefix: Option<&str>, call: &str) -> Target {
        Target::Api {
            prefix: prefix.map(String::from),
            call: call.into(),
        }
    }

    #[test]
    fn paths_name_their_target() {
        for (path, expected) in [
            ("/bigbluebutton/api", api(None, "")),
            ("/bigbluebutton/api/", api(None, "")),
            ("/bigbluebutton/", api(None, "")),
            ("/bigbluebutton/api/getMeetings", api(None, "getMeetings")),
            ("/uni/bigbluebutton/api/create", api(Some("uni"), "create")),
            ("/UNI/bigbluebutton/api/", api(Some("uni"), "")),
            ("/demo/mobile.jsp", Target::Mobile { prefix: None }),
            (
                "/bigbluebutton/demo/mobile.jsp",
                Target::Mobile { prefix: None },
            ),
            (
                "/uni/bigbluebutton/demo/mobile.jsp",
                Target::Mobile {
                    prefix: Some("uni".into()),
                },
            ),
            ("/mobile/bigbluebutton/api", Target::MobileIndex),
            ("/mobile/uni/bigbluebutton/api/", Target::MobileIndex),
            (
                "/mobile/bigbluebutton/api/getMeetings",
                api(None, "getMeetings"),
            ),
            (
                "/mobile/bigbluebutton/demo/mobile.jsp",
                Target::Mobile { prefix: None },
            ),
            (
                "/mobile/uni/demo/mobile.jsp",
                Target::Mobile {
                    prefix: Some("uni".into()),
                },
            ),
            ("/mobilex/bigbluebutton/api", api(Some("mobilex"), "")),
            ("/health_check", Target::Health),
            ("/", Target::Unknown),
            ("/elsewhere/thing", Target::Unknown),
        ] {
            assert_eq!(Target::of(path), expected, "{path}");
        }
    }

    #[test]
    fn reserved_prefixes_are_never_read_as_prefixes() {
        for reserved in crate::ops::integrations::RESERVED_PREFIXES {
            let target = Target::of(&format!("/{reserved}/bigbluebutton/api/create"));
            assert!(
                !matches!(
                    target,
                    Target::Api {
                        prefix: Some(_),
                        ..
                    }
                ),
                "{reserved}: {target:?}"
            );
        }
    }
}
