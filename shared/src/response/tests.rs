//! Round trips of every reference sample, and typed reads of the main ones.

use std::path::PathBuf;

use super::*;

fn samples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xml");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures exist")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

fn sample(name: &str) -> Response {
    let (_, text) = samples().into_iter().find(|(n, _)| n == name).unwrap();
    Response::from_xml(&text).unwrap()
}

/// Samples in Mconf-LB's 0.81-era shape (other field order, fields missing).
const PARTIAL_SHAPES: [&str; 1] = ["lb-getMeetings-with-server.xml"];

#[test]
fn every_xml_sample_round_trips_through_the_tree_and_the_types() {
    let mut typed = 0;
    for (name, text) in samples() {
        if name.ends_with(".json") {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&value.to_string()).unwrap(),
                value
            );
            continue;
        }
        if !name.ends_with(".xml") {
            continue;
        }
        let tree = Element::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            Element::parse(&tree.to_xml()).unwrap(),
            tree,
            "{name}: tree round trip"
        );
        if tree.name != "response" {
            continue; // the mobile API's bare <meetings> list
        }
        let response = Response::from_element(&tree).unwrap_or_else(|e| panic!("{name}: {e}"));
        if PARTIAL_SHAPES.contains(&name.as_str()) {
            // Old field order with missing fields: the types rewrite it in today's shape, losing
            // nothing (checked by the typed round trip below).
            assert!(
                response
                    .to_xml()
                    .contains("<server><name>bbb1.example.org</name>"),
                "{name}"
            );
        } else {
            assert_eq!(response.to_element(), tree, "{name}: typed round trip");
        }
        assert_eq!(
            Response::from_xml(&response.to_xml()).unwrap(),
            response,
            "{name}"
        );
        typed += 1;
    }
    assert!(typed >= 40, "only {typed} typed samples");
}

#[test]
fn reads_a_meeting_with_attendees_and_metadata() {
    let Body::Meeting(m) = sample("getMeetingInfo.xml").body else {
        panic!("not a meeting")
    };
    assert_eq!(m.meeting_id, "cs101-2024");
    assert_eq!(
        (m.participant_count, m.moderator_count, m.video_count),
        (2, 1, 1)
    );
    assert_eq!(m.attendees[1].full_name, "José Ñoño");
    assert_eq!(
        m.attendees[0].customdata,
        [("bbb_auto_join_audio".to_owned(), "true".to_owned())]
    );
    assert_eq!(
        m.metadata[0],
        ("bbb-origin".to_owned(), "moodle".to_owned())
    );
    assert_eq!(m.audio_users(), 2);
    assert!(m.running && m.extra.is_empty());
}

#[test]
fn reads_lists_and_envelopes() {
    let r = sample("getMeetings.xml");
    let Body::Meetings(meetings) = &r.body else {
        panic!()
    };
    assert_eq!(meetings.len(), 2);
    assert!(!meetings[1].running);

    let empty = sample("getMeetings-empty.xml");
    assert_eq!(empty.key(), Some("noMeetings"));
    assert_eq!(empty.body, Body::Meetings(vec![]));

    let Body::Recordings(recs) = sample("getRecordings.xml").body else {
        panic!()
    };
    assert_eq!(recs[0].playback.len(), 2);
    assert_eq!(recs[0].playback[0].length, 60);
    assert_eq!(recs[0].meta("meetingid"), Some("cs101-2024"));
    assert!(recs[0].playback[0].preview.is_some());

    let legacy = sample("create-error-nonUniqueVoiceBridge.xml");
    assert!(!legacy.is_success());
    assert_eq!(legacy.key(), Some("nonUniqueVoiceBridge"));

    let Body::Created(c) = sample("create-duplicate.xml").body else {
        panic!()
    };
    assert_eq!(c.voice_bridge, "71234");
    assert_eq!(
        sample("create-duplicate.xml").key(),
        Some("duplicateWarning")
    );

    let Body::Joined(j) = sample("join-redirect-false.xml").body else {
        panic!()
    };
    assert_eq!(j.session_token, "r7m2kq0w9c4x1b5n");
    assert_eq!(
        sample("isMeetingRunning.xml").field("running"),
        Some("true")
    );
}

#[test]
fn unknown_elements_survive() {
    let xml = "<response><returncode>SUCCESS</returncode><meetingName>n</meetingName><meetingID>m</meetingID>\
               <plugin><x a=\"1\">y</x></plugin><isBreakout>false</isBreakout><newField>1</newField></response>";
    let r = Response::from_xml(xml).unwrap();
    let Body::Meeting(m) = &r.body else { panic!() };
    assert_eq!(
        m.extra.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["plugin", "newField"]
    );
    let again = Response::from_xml(&r.to_xml()).unwrap();
    assert_eq!(again, r);
    assert!(r.to_xml().contains("<plugin><x a=\"1\">y</x></plugin>"));
}

#[test]
fn bad_values_are_errors_not_panics() {
    for xml in [
        "<response><returncode>MAYBE</returncode></response>",
        "<meetings/>",
        "<response><returncode>SUCCESS</returncode><meetingName>n</meetingName><running>yes</running></response>",
        "<response><returncode>SUCCESS</returncode><meetingName>n</meetingName><participantCount>-1</participantCount></response>",
    ] {
        assert!(Response::from_xml(xml).is_err(), "{xml}");
    }
    let tolerant = "<response><returncode>SUCCESS</returncode><meetings><meeting><participantCount>1,234</participantCount></meeting></meetings></response>";
    let Body::Meetings(m) = Response::from_xml(tolerant).unwrap().body else {
        panic!()
    };
    assert_eq!(m[0].participant_count, 1234);
}

#[test]
fn failures_render_like_bbb() {
    let xml = Response::failed(messages::CHECKSUM_ERROR).to_xml();
    assert_eq!(
        xml,
        "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey>\
         <message>Checksums do not match</message></response>"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn from_xml_never_panics(input in "(<response><returncode>(SUCCESS|FAILED)</returncode>)?.{0,200}") {
            let _ = Response::from_xml(&input);
        }
    }
}
