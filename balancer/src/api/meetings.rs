//! `getMeetings`, answered from the store: the calling integration's meetings as the nodes
//! last reported them (poll or create), so one slow or dead node never fails the call. The
//! rendered answer is cached per integration until meetings change.

use std::sync::Arc;

use conflux_shared::response::{messages, Body, Meeting};
use conflux_shared::{Element, Response};

use super::error::ApiError;
use super::Answer;
use crate::state::AppState;
use conflux_store::Integration;

/// `api.get_meetings_disabled`: always no meetings, without a checksum (Scalelite).
pub fn disabled() -> Response {
    Response::success(Body::Meetings(Vec::new())).with_message(messages::NO_MEETINGS)
}

pub async fn handle(
    state: &Arc<AppState>,
    integration: Arc<Integration>,
) -> Result<Answer, ApiError> {
    if let Some(cached) = state.cached_meetings(integration.id) {
        return Ok(Answer::Raw(cached));
    }
    let _one_builder = state.meetings_rebuild.lock().await;
    if let Some(cached) = state.cached_meetings(integration.id) {
        return Ok(Answer::Raw(cached));
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
    let bytes = warp::hyper::body::Bytes::from(xml);
    state.cache_meetings(integration.id, generation, bytes.clone());
    Ok(Answer::Raw(bytes))
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
