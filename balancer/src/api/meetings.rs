//! `getMeetings`, answered from the store: the calling integration's meetings as the nodes
//! last reported them (poll or create), so one slow or dead node never fails the call.

use std::sync::Arc;

use conflux_shared::response::{messages, Body, Meeting};
use conflux_shared::{Element, Response};

use super::error::ApiError;
use crate::state::AppState;
use crate::store::{self, Integration};

pub async fn handle(state: &Arc<AppState>, integration: Integration) -> Result<Response, ApiError> {
    if state.config.api.get_meetings_disabled {
        return Ok(
            Response::success(Body::Meetings(Vec::new())).with_message(messages::NO_MEETINGS)
        );
    }
    let id = integration.id;
    let records = state
        .store
        .run(move |c| store::meetings::for_integration(c, id))
        .await?;
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
