//! The getMeetings cache: what invalidates whose answer.

use super::*;
use crate::config::Config;

fn answer() -> Bytes {
    Bytes::from_static(b"<response/>")
}

#[tokio::test]
async fn a_change_in_one_integration_leaves_the_others_answers_cached() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(None, Some(dir.path().to_path_buf()), &[]).unwrap();
    let state = AppState::open(config).unwrap();
    let (a, b) = (IntegrationId(1), IntegrationId(2));
    for i in [a, b] {
        state.cache_meetings(i, state.meetings_generation(i), answer());
    }
    state.meetings_changed_in(a);
    assert!(state.cached_meetings(a).is_none());
    assert!(state.cached_meetings(b).is_some());

    // A list read before a route of its integration changed is never cached as current.
    let before = state.meetings_generation(b);
    let route = Route {
        integration: b,
        node: NodeId(1),
    };
    state.set_route("m1", Some(route));
    state.cache_meetings(b, before, answer());
    assert!(state.cached_meetings(b).is_none());
    state.cache_meetings(b, state.meetings_generation(b), answer());
    // Nor after it went: the integration the meeting had is the one invalidated.
    state.set_route("m1", None);
    assert!(state.cached_meetings(b).is_none());

    // A change of any meeting (a poll round, another writer) invalidates every answer.
    for i in [a, b] {
        state.cache_meetings(i, state.meetings_generation(i), answer());
    }
    state.meetings_changed();
    assert!(state.cached_meetings(a).is_none() && state.cached_meetings(b).is_none());
}
