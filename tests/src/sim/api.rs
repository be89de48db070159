//! The simulated node's BBB API: one filter for `/bigbluebutton/api/...`, then the request
//! pipeline bbb-web applies (fault injection, Content-Type, checksum, form body) and a dispatch
//! on the call name.

use std::sync::Arc;

use conflux_shared::checksum::SignedQuery;
use conflux_shared::response::{messages, Message};
use conflux_shared::{Query, Response};
use warp::http::{header, Method, StatusCode};
use warp::hyper::body::Bytes;
use warp::reply::Reply;
use warp::Filter;

use super::state::Fault;
use super::{meetings, recordings, too_large, Sim};

/// Largest request body accepted (bbb-web's default max POST size is about 2 MB; presentations
/// sent inline may be larger, so allow more).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// A BBB API request as the handlers see it.
pub(crate) struct ApiRequest {
    pub call: String,
    pub method: Method,
    /// URL and form-body parameters, URL first.
    pub params: Query,
    pub body: Bytes,
}

/// What a handler answers.
pub(crate) enum Answer {
    Xml(Response),
    Json(serde_json::Value),
    Redirect(String),
}

pub(crate) fn routes(sim: Arc<Sim>) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    warp::path("bigbluebutton")
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .then(
            move |tail: warp::path::Tail, method, raw_query, content_type, body| {
                let sim = sim.clone();
                async move {
                    let Some(body) = conflux_shared::body::read_limited(body, MAX_BODY)
                        .await
                        .ok()
                    else {
                        return too_large();
                    };
                    let call = tail
                        .as_str()
                        .trim_start_matches("api")
                        .trim_matches('/')
                        .to_owned();
                    handle(&sim, call, method, raw_query, content_type, body).await
                }
            },
        )
        .boxed()
}

async fn handle(
    sim: &Sim,
    call: String,
    method: Method,
    raw_query: String,
    content_type: Option<String>,
    body: Bytes,
) -> warp::reply::Response {
    let fault = *sim.fault.borrow();
    match fault {
        Fault::Ok => {}
        Fault::Slow { delay_ms } => {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await
        }
        Fault::Error => {
            return warp::reply::with_status(
                "Internal Server Error",
                StatusCode::INTERNAL_SERVER_ERROR,
            )
            .into_response()
        }
        Fault::Hang => std::future::pending::<()>().await,
    }
    let answer = match prepare(sim, call, method, &raw_query, content_type, body) {
        Ok(req) => dispatch(sim, req),
        Err(answer) => answer,
    };
    render(answer)
}

/// Checks Content-Type, checksum and body the way bbb-web does; `Err` is the error answer.
fn prepare(
    sim: &Sim,
    call: String,
    method: Method,
    raw_query: &str,
    content_type: Option<String>,
    body: Bytes,
) -> Result<ApiRequest, Answer> {
    let mut params = Query::parse(raw_query)
        .map_err(|_| xml_error(messages::validation("Request not recognized")))?;
    if call.is_empty() {
        return Ok(ApiRequest {
            call,
            method,
            params,
            body,
        });
    }
    let checksum_error = if recordings::is_recording_call(&call) {
        messages::CHECKSUM_ERROR_LEGACY
    } else {
        messages::CHECKSUM_ERROR
    };
    let mime = content_type
        .as_deref()
        .map(conflux_shared::body::media_type);
    if !body.is_empty() && !content_type_allowed(&call, mime.as_deref()) {
        return Err(xml_error(messages::UNSUPPORTED_CONTENT_TYPE));
    }
    let signed = SignedQuery::parse(raw_query, sim.config.algorithms)
        .map_err(|_| xml_error(checksum_error))?;
    if !signed.matches(&call, &sim.config.secret) {
        return Err(xml_error(checksum_error));
    }
    if mime.as_deref() == Some("application/x-www-form-urlencoded") && !body.is_empty() {
        let form = std::str::from_utf8(&body)
            .ok()
            .and_then(|text| Query::parse(text).ok())
            .ok_or_else(|| xml_error(messages::validation("Request not recognized")))?;
        // A parameter sent both in the URL and in the body fails the checksum check (BBB docs).
        if form
            .params()
            .iter()
            .any(|p| p.name != "checksum" && params.contains(&p.name))
        {
            return Err(xml_error(checksum_error));
        }
        params.extend_from(form);
    }
    Ok(ApiRequest {
        call,
        method,
        params,
        body,
    })
}

fn content_type_allowed(call: &str, mime: Option<&str>) -> bool {
    mime.is_some_and(|m| conflux_shared::body::accepted_content_types(call).contains(&m))
}

fn dispatch(sim: &Sim, req: ApiRequest) -> Answer {
    *sim.lock().calls.entry(req.call.clone()).or_default() += 1;
    match req.call.as_str() {
        "" => Answer::Xml(Response::fields(&[
            ("version", "2.0"),
            ("apiVersion", "2.0"),
            ("bbbVersion", &sim.config.version),
        ])),
        "create" => meetings::create(sim, &req),
        "join" if req.method == Method::GET => meetings::join(sim, &req),
        "end" => meetings::end(sim, &req),
        "isMeetingRunning" => meetings::is_meeting_running(sim, &req),
        "getMeetingInfo" => meetings::get_meeting_info(sim, &req),
        "getMeetings" => meetings::get_meetings(sim),
        "insertDocument" if req.method == Method::POST => meetings::insert_document(sim, &req),
        "sendChatMessage" => meetings::send_chat_message(sim, &req),
        "getRecordings" => recordings::get_recordings(sim, &req),
        "publishRecordings" => recordings::publish(sim, &req),
        "deleteRecordings" => recordings::delete(sim, &req),
        "updateRecordings" => recordings::update(sim, &req),
        "getRecordingTextTracks" => recordings::text_tracks(sim, &req),
        _ => xml_error(messages::UNSUPPORTED_REQUEST),
    }
}

pub(crate) fn xml_error(message: Message) -> Answer {
    Answer::Xml(Response::failed(message))
}

fn render(answer: Answer) -> warp::reply::Response {
    match answer {
        Answer::Xml(response) => {
            let reply = warp::reply::with_header(
                response.to_xml(),
                header::CONTENT_TYPE,
                "text/xml;charset=utf-8",
            );
            warp::reply::with_header(reply, header::CACHE_CONTROL, "no-cache").into_response()
        }
        Answer::Json(value) => warp::reply::json(&value).into_response(),
        Answer::Redirect(location) => {
            let reply = warp::reply::with_header(warp::reply(), header::LOCATION, location);
            warp::reply::with_status(reply, StatusCode::FOUND).into_response()
        }
    }
}
