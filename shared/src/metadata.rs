//! BBB's `metadata.xml`, the description of one recording format's folder
//! (`<published>/<format>/<recordID>/metadata.xml`): read by the agent, the recorder and the
//! spool importer, written by the simulator. Real BBB writes `available` for a published state
//! and repeats the meeting's id and name in `<meta>`; both are read.

use crate::response::{PlaybackFormat, Recording};
use crate::xml::Element;

/// Reads a `metadata.xml` document.
pub fn parse(text: &str) -> Option<Recording> {
    from_element(&Element::parse(text).ok()?)
}

/// BBB's `metadata.xml` for `r`.
pub fn to_element(r: &Recording) -> Element {
    let mut meeting = Element::new("meeting");
    meeting.attrs = vec![
        ("id".into(), r.internal_meeting_id.clone()),
        ("externalId".into(), r.meeting_id.clone()),
        ("name".into(), r.name.clone()),
        ("breakout".into(), r.is_breakout.to_string()),
    ];
    let mut meta = Element::new("meta");
    for (k, v) in &r.metadata {
        meta.push(Element::text(k.clone(), v.clone()));
    }
    let mut root = Element::new("recording")
        .with_text("id", &r.record_id)
        .with_text("state", &r.state)
        .with_text("published", r.published)
        .with_text("start_time", r.start_time)
        .with_text("end_time", r.end_time)
        .with_text("participants", r.participants)
        .with(meeting)
        .with(meta);
    for format in &r.playback {
        let mut playback = Element::new("playback")
            .with_text("format", &format.format_type)
            .with_text("link", &format.url);
        if let Some(ms) = format.processing_time {
            playback.push(Element::text("processing_time", ms.to_string()));
        }
        playback.push(Element::text(
            "duration",
            (format.length * 60_000).to_string(),
        ));
        if let Some(preview) = &format.preview {
            playback.push(Element::new("extensions").with(preview.clone()));
        }
        root.push(playback);
    }
    root
}

pub fn from_element(root: &Element) -> Option<Recording> {
    if root.name != "recording" {
        return None;
    }
    // Older and hand-made metadata.xml files have no <meeting>: its values come from <meta>.
    let meeting = root.child("meeting");
    let attr = |name: &str| meeting.and_then(|m| m.attr(name));
    let meta = |key: &str| root.child("meta").and_then(|m| m.child_text(key));
    let number = |name: &str| {
        root.child_text(name)
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let record_id = root.child_text("id")?;
    Some(Recording {
        record_id: record_id.to_owned(),
        meeting_id: attr("externalId")
            .or_else(|| meta("meetingId"))
            .unwrap_or_default()
            .to_owned(),
        // BBB names a recording after its meeting's internal id.
        internal_meeting_id: attr("id").unwrap_or(record_id).to_owned(),
        name: attr("name")
            .or_else(|| meta("meetingName"))
            .unwrap_or_default()
            .to_owned(),
        is_breakout: attr("breakout").or_else(|| meta("isBreakout")) == Some("true"),
        published: root.child_text("published") == Some("true"),
        state: match root.child_text("state") {
            None | Some("available") => "published".to_owned(),
            Some(state) => state.to_owned(),
        },
        start_time: number("start_time"),
        end_time: number("end_time"),
        participants: u32::try_from(number("participants")).unwrap_or(0),
        metadata: root
            .child("meta")
            .map(|m| {
                m.children
                    .iter()
                    .map(|c| (c.name.clone(), c.text.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        playback: root
            .children
            .iter()
            .filter(|c| c.name == "playback")
            .map(|p| PlaybackFormat {
                format_type: p.child_text("format").unwrap_or_default().to_owned(),
                url: p.child_text("link").unwrap_or_default().to_owned(),
                processing_time: p
                    .child_text("processing_time")
                    .and_then(|t| t.trim().parse().ok()),
                length: p
                    .child_text("duration")
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(0)
                    / 60_000,
                // Thumbnails: `<extensions><preview><images><image ...>URL</image>`.
                preview: p
                    .child("extensions")
                    .and_then(|e| e.child("preview"))
                    .cloned(),
                extra: Vec::new(),
            })
            .collect(),
        extra: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::Thumbnail;

    #[test]
    fn a_metadata_file_without_its_meeting_element_names_the_meeting_from_meta() {
        let xml = "<recording><id>abc-1</id><state>published</state><published>true</published>\
            <meta><meetingId>ext</meetingId><meetingName>Class</meetingName></meta></recording>";
        let r = parse(xml).expect("parsed");
        assert_eq!(
            (
                r.meeting_id.as_str(),
                r.name.as_str(),
                r.internal_meeting_id.as_str()
            ),
            ("ext", "Class", "abc-1")
        );
    }

    #[test]
    fn metadata_xml_round_trips() {
        let r = Recording {
            record_id: "abc-1".into(),
            meeting_id: "m1".into(),
            internal_meeting_id: "abc-1".into(),
            name: "Room & co".into(),
            published: true,
            state: "published".into(),
            start_time: 1,
            end_time: 120_001,
            participants: 3,
            metadata: vec![
                ("meetingId".into(), "m1".into()),
                ("bbb-origin".into(), "moodle".into()),
            ],
            playback: vec![PlaybackFormat {
                format_type: "presentation".into(),
                url: "http://x/playback/presentation/2.3/abc-1".into(),
                processing_time: Some(10),
                length: 2,
                preview: PlaybackFormat::preview_of(&[Thumbnail {
                    url: "http://x/presentation/abc-1/presentation/d1/thumbnails/thumb-1.png"
                        .into(),
                    width: 176,
                    height: 136,
                    alt: "Welcome".into(),
                }]),
                ..PlaybackFormat::default()
            }],
            ..Recording::default()
        };
        let xml = to_element(&r).to_xml();
        assert_eq!(parse(&xml), Some(r));
    }

    #[test]
    fn real_bbb_metadata_reads_available_and_meta_ids() {
        let xml = r#"<recording><id>r1</id><state>available</state><published>true</published>
            <start_time>5</start_time><end_time>65005</end_time><participants>2</participants>
            <meeting id="r1" breakout="false"/>
            <meta><meetingId>ext</meetingId><meetingName>Class</meetingName><isBreakout>false</isBreakout></meta>
            <playback><format>presentation</format><link>https://n/playback/presentation/2.3/r1</link>
            <processing_time>7</processing_time><duration>120000</duration>
            <extensions><preview><images><image width="176" height="136" alt="Hi">https://n/presentation/r1/presentation/d/thumbnails/thumb-1.png</image></images></preview></extensions>
            </playback></recording>"#;
        let mut r = parse(xml).unwrap();
        assert_eq!(
            (r.meeting_id.as_str(), r.name.as_str(), r.state.as_str()),
            ("ext", "Class", "published")
        );
        assert_eq!((r.playback[0].length, r.participants), (2, 2));
        assert_eq!(r.playback[0].processing_time, Some(7));
        let mut urls = Vec::new();
        r.playback[0].retain_thumbnails(|url| {
            urls.push(url.clone());
            true
        });
        assert_eq!(
            urls,
            ["https://n/presentation/r1/presentation/d/thumbnails/thumb-1.png"]
        );
        r.playback[0].retain_thumbnails(|_| false);
        assert_eq!(r.playback[0].preview, None, "no image, no preview");
        assert_eq!(parse("<response/>"), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics(input in ".{0,400}") {
                let _ = parse(&input);
            }

            #[test]
            fn parse_never_panics_on_metadata_like_input(
                input in "(<recording>|<id>|</id>|<meeting id=\"x\" externalId=\"[a-z]{0,3}\"/>|<meta>|</meta>|<start_time>[0-9-]{0,22}</start_time>|<playback>|<format>|[a-z0-9 ]{0,8}|</recording>){0,16}"
            ) {
                let _ = parse(&input);
            }

            #[test]
            fn written_metadata_parses_back(
                record_id in "[a-z0-9-]{1,30}",
                meeting_id in "[ -~]{1,30}",
                start in 0u64..4_000_000_000_000,
                length in 0u64..100_000_000,
                key in "[a-z][a-z0-9-]{0,10}",
                value in "[ -~]{0,30}",
            ) {
                let recording = Recording {
                    record_id: record_id.clone(),
                    internal_meeting_id: record_id,
                    meeting_id,
                    name: "Lecture".into(),
                    published: true,
                    state: "published".into(),
                    start_time: start,
                    end_time: start + length,
                    metadata: vec![(key, value)],
                    ..Recording::default()
                };
                let parsed = parse(&to_element(&recording).to_xml()).unwrap();
                prop_assert_eq!(parsed.record_id, recording.record_id);
                prop_assert_eq!(parsed.meeting_id, recording.meeting_id);
                prop_assert_eq!(parsed.start_time, recording.start_time);
                prop_assert_eq!(parsed.end_time, recording.end_time);
                prop_assert_eq!(parsed.metadata, recording.metadata);
            }
        }
    }
}
