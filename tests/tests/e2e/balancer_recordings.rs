//! Recordings through the balancer: found on the nodes by the poller, owned by the integration
//! whose meeting produced them, changed on the node that holds them.

use conflux_shared::response::{Body, Recording};
use conflux_shared::Algorithm;
use conflux_tests::harness::{balancer, eventually, host, sim, BbbClient};
use reqwest::Method;
use serde_json::json;

const UNI: &str = "uni-secret-0123456789";
const SCHOOL: &str = "school-secret-0123456789";

async fn listed(bbb: &BbbClient, params: &[(&str, &str)]) -> Vec<Recording> {
    let response = bbb.call("getRecordings", params).await;
    match response.body {
        Body::Recordings(list) => list,
        _ => panic!("{:?} {:?}", response.key(), response.text()),
    }
}

#[tokio::test]
async fn recordings_are_listed_per_integration_and_changed_on_their_node() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let lb = balancer()
        .nodes(&[&n1, &n2])
        .integration("uni", UNI)
        .integration("school", SCHOOL)
        .env("CONFLUX_POLLER__RECORDINGS_EVERY", "1")
        .config("[recordings]\nrequire_recorder = false")
        .start()
        .await;
    let uni = lb.client(UNI, Algorithm::Sha256);
    let school = lb.client(SCHOOL, Algorithm::Sha1);
    for id in ["lecture-1", "lecture-2"] {
        assert!(uni
            .call(
                "create",
                &[
                    ("meetingID", id),
                    ("name", "Lecture"),
                    ("record", "true"),
                    ("meta_course", "cs101")
                ]
            )
            .await
            .is_success());
    }
    assert!(school
        .call(
            "create",
            &[
                ("meetingID", "class-1"),
                ("name", "Class"),
                ("record", "true")
            ]
        )
        .await
        .is_success());
    let nodes = [&n1, &n2];
    let mut record_ids = Vec::new();
    for id in ["lecture-1", "lecture-2", "class-1"] {
        let node = host(&nodes, id).await;
        let (status, body) = node
            .control(Method::POST, &format!("meetings/{id}/recording"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        record_ids.push(body["recordID"].as_str().unwrap().to_owned());
    }
    assert!(
        eventually(|| async { listed(&uni, &[]).await.len() == 2 }).await,
        "the poller imports the recordings"
    );
    let found = listed(&uni, &[]).await;
    assert!(found.iter().all(|r| r.meeting_id.starts_with("lecture")));
    // Scalelite's document: BBB's repeated metadata left out, processingTime and the
    // thumbnails kept as the node lists them.
    for r in &found {
        assert_eq!(r.meta("course"), Some("cs101"));
        for key in ["meetingId", "meetingName", "isBreakout"] {
            assert_eq!(r.meta(key), None, "{key} in {:?}", r.metadata);
        }
        let format = &r.playback[0];
        assert_eq!(format.processing_time, Some(1000));
        let preview = format.preview.as_ref().expect("a preview");
        let image = &preview.children[0].children[0];
        assert!(image.text.ends_with("thumbnails/thumb-1.png"), "{image:?}");
        assert_eq!(image.attr("width"), Some("176"));
    }
    let school_list = listed(&school, &[]).await;
    assert_eq!(
        school_list
            .iter()
            .map(|r| r.meeting_id.as_str())
            .collect::<Vec<_>>(),
        ["class-1"]
    );
    assert_eq!(listed(&uni, &[("meetingID", "lecture-2")]).await.len(), 1);
    assert_eq!(
        listed(&uni, &[("meta_course", "cs101"), ("limit", "1")])
            .await
            .len(),
        1
    );
    // Scalelite's meta filters: a comma list of values within a key, different keys OR-ed.
    let count = |params: &'static [(&'static str, &'static str)]| {
        let uni = &uni;
        async move { listed(uni, params).await.len() }
    };
    assert_eq!(count(&[("meta_course", "math,cs101")]).await, 2);
    assert_eq!(count(&[("meta_course", "math")]).await, 0);
    assert_eq!(
        count(&[("meta_course", "math"), ("meta_course2", "x")]).await,
        0
    );
    assert_eq!(
        count(&[("meta_course", "cs101"), ("meta_term", "none")]).await,
        2
    );
    assert_eq!(
        uni.call("getRecordings", &[("meetingID", "class-1")])
            .await
            .key(),
        Some("noRecordings"),
        "B's recording is invisible to A"
    );
    let foreign = uni
        .call(
            "publishRecordings",
            &[("recordID", &record_ids[2]), ("publish", "false")],
        )
        .await;
    assert_eq!(
        foreign.key(),
        Some("notFound"),
        "A cannot touch B's recording"
    );

    let first = &record_ids[0];
    let published = uni
        .call(
            "publishRecordings",
            &[("recordID", first), ("publish", "false")],
        )
        .await;
    assert_eq!(published.field("published"), Some("false"));
    let on_node = host(&nodes, "lecture-1").await.client(Algorithm::Sha1);
    assert_eq!(
        listed(&on_node, &[("recordID", first), ("state", "unpublished")])
            .await
            .len(),
        1,
        "the node got it"
    );
    assert_eq!(listed(&uni, &[("state", "unpublished")]).await.len(), 1);
    assert_eq!(
        uni.call(
            "updateRecordings",
            &[("recordID", first), ("meta_term", "fall")]
        )
        .await
        .field("updated"),
        Some("true")
    );
    assert_eq!(
        listed(&uni, &[("meta_term", "fall"), ("state", "any")])
            .await
            .len(),
        1
    );
    let tracks = uni
        .get(&uni.url("getRecordingTextTracks", &[("recordID", first)]))
        .await;
    assert!(
        tracks.content_type.starts_with("application/json") && tracks.body.contains("SUCCESS"),
        "{}",
        tracks.body
    );
    assert_eq!(
        uni.call("deleteRecordings", &[("recordID", first)])
            .await
            .field("deleted"),
        Some("true")
    );
    assert_eq!(listed(&uni, &[]).await.len(), 1);
    assert_eq!(listed(&uni, &[("state", "deleted")]).await.len(), 1);
    assert_eq!(
        uni.call(
            "publishRecordings",
            &[("recordID", "nope"), ("publish", "true")]
        )
        .await
        .key(),
        Some("notFound")
    );
    assert_eq!(
        uni.call("publishRecordings", &[("recordID", first)])
            .await
            .key(),
        Some("missingParamPublish")
    );
    assert_eq!(
        uni.call("deleteRecordings", &[]).await.key(),
        Some("missingParamRecordID")
    );
}
