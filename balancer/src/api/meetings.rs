//! `getMeetings`, answered from the store: the calling integration's meetings as the nodes
//! last reported them (poll or create), so one slow or dead node never fails the call. The
//! rendered answer is cached per integration until meetings change.

use std::sync::Arc;

use conflux_shared::response::{messages, Body, Meeting};
use conflux_shared::{Element, Response};

use super::error::ApiError;
use super::Answer;
use crate::state::{AppState, MeetingsAnswer};
use conflux_store::Integration;
use warp::hyper::body::Bytes;

/// `api.get_meetings_disabled`: always no meetings, without a checksum (Scalelite).
pub fn disabled() -> Response {
    Response::success(Body::Meetings(Vec::new())).with_message(messages::NO_MEETINGS)
}

/// Answers under this size are never compressed: gzip would save less than a packet.
const GZIP_FROM: usize = 4096;

/// The integration's getMeetings answer, gzipped when the caller accepts it (`gzip`) and it is
/// large: with attendees a big integration's list runs to megabytes, and a client like
/// Greenlight's (Ruby's Net::HTTP asks for gzip by default) gets a tenth of the bytes. Both
/// forms are built once per change and cached.
pub async fn handle(
    state: &Arc<AppState>,
    integration: Arc<Integration>,
    gzip: bool,
) -> Result<Answer, ApiError> {
    let answer = match state.cached_meetings(integration.id) {
        Some(cached) => cached,
        None => build(state, &integration).await?,
    };
    if !gzip || answer.xml.len() < GZIP_FROM {
        return Ok(Answer::Raw(answer.xml.clone()));
    }
    if let Some(zipped) = answer.gzip.get() {
        return Ok(Answer::Gzip(zipped.clone()));
    }
    let _one_builder = state.meetings_rebuild.lock().await;
    if answer.gzip.get().is_none() {
        let xml = answer.xml.clone();
        // Only a panic fails the task: the plain answer is then sent.
        if let Ok(zipped) = tokio::task::spawn_blocking(move || compress(&xml)).await {
            answer.gzip.set(zipped).ok();
        }
    }
    Ok(answer.gzip.get().map_or_else(
        || Answer::Raw(answer.xml.clone()),
        |z| Answer::Gzip(z.clone()),
    ))
}

/// The answer rendered from the store and cached (once, however many callers miss at once).
async fn build(
    state: &Arc<AppState>,
    integration: &Integration,
) -> Result<Arc<MeetingsAnswer>, ApiError> {
    let _one_builder = state.meetings_rebuild.lock().await;
    if let Some(cached) = state.cached_meetings(integration.id) {
        return Ok(cached);
    }
    let generation = state.meetings_generation(integration.id);
    // The stored <meeting> elements were written by this balancer: concatenated, not reparsed.
    const HEAD: &str = "<response><returncode>SUCCESS</returncode><meetings>";
    let (count, mut xml) = state
        .store
        .meeting_elements(integration.id, String::from(HEAD))
        .await?;
    let xml = if count == 0 {
        Response::success(Body::Meetings(Vec::new()))
            .with_message(messages::NO_MEETINGS)
            .to_xml()
    } else {
        xml.push_str("</meetings></response>");
        xml
    };
    Ok(state.cache_meetings(integration.id, generation, Bytes::from(xml)))
}

/// gzip at the fastest level: the repetitive XML still shrinks about tenfold.
fn compress(xml: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(xml.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    encoder.write_all(xml).ok();
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// The integration's meetings as a getMeetings answer.
pub async fn list(state: &Arc<AppState>, integration: &Integration) -> Result<Response, ApiError> {
    let records = state.store.meetings_of(integration.id).await?;
    let meetings: Vec<Meeting> = records
        .iter()
        .filter_map(|r| r.info_xml.as_deref())
        .filter_map(|xml| Element::parse(xml).ok())
        .filter_map(|e| Meeting::from_element(&e).ok())
        .collect();
    let empty = meetings.is_empty();
    let response = Response::success(Body::Meetings(meetings));
    Ok(if empty {
        response.with_message(messages::NO_MEETINGS)
    } else {
        response
    })
}
