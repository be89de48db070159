//! Calls about one meeting, proxied to the node hosting it: end, isMeetingRunning,
//! getMeetingInfo, insertDocument, sendChatMessage. An unknown meeting (or one of another
//! integration) is answered without any node traffic.

use std::sync::Arc;

use conflux_shared::response::messages;
use conflux_shared::Response;
use serde_json::json;

use super::error::ApiError;
use super::request::ApiRequest;
use super::Answer;
use crate::state::AppState;
use conflux_store::{EventKind, Integration, NewEvent};

pub async fn handle(
    state: &Arc<AppState>,
    req: ApiRequest,
    integration: Arc<Integration>,
) -> Result<Answer, ApiError> {
    let meeting_id = req.meeting_id()?;
    let route = state
        .find_route(&meeting_id)
        .await
        .filter(|r| r.integration == integration.id);
    let node = route.and_then(|r| state.nodes.load().get(r.node).cloned());
    let Some(node) = node else {
        return Ok(Answer::Xml(match req.call.as_str() {
            "isMeetingRunning" => Response::fields(&[("running", "false")]),
            _ => Response::failed(messages::NOT_FOUND),
        }));
    };
    let context = match req.call.as_str() {
        "insertDocument" => "Unable to insert document on server.",
        _ => crate::node_client::MEETING_CONTEXT,
    };
    let body = req.node_body();
    let answer = state
        .node_client
        .call(&node, &req.call, &req.unsigned_query(), body, context)
        .await?;
    // Fast path: a successful answer to a read-only call is passed on byte for byte. BBB writes
    // the return code first, so only the answer's head is searched.
    let head = &answer.body[..answer.body.len().min(256)];
    if req.call != "end" && is_success(head) {
        return Ok(Answer::Raw(answer.body));
    }
    let response = answer.parse(context)?;
    let gone = !response.is_success() && response.key() == Some("notFound");
    if (req.call == "end" && response.is_success()) || gone {
        let data = json!({ "by": if gone { "node" } else { "end" } });
        let event = NewEvent::meeting(
            EventKind::MeetingEnded,
            integration.id,
            &meeting_id,
            node.id,
            data,
        );
        state.store.remove_meeting(&meeting_id, Some(event)).await?;
        state.set_route(&meeting_id, None);
    }
    Ok(Answer::Xml(response))
}

fn is_success(head: &[u8]) -> bool {
    static SUCCESS: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| {
            memchr::memmem::Finder::new("<returncode>SUCCESS</returncode>")
        });
    SUCCESS.find(head).is_some()
}
