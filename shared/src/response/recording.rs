//! A recording as getRecordings shows it, with its playback formats.

use crate::response::reader::{pairs_element, FieldReader};
use crate::xml::{Element, XmlError};

/// One `<recording>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    pub record_id: String,
    pub meeting_id: String,
    pub internal_meeting_id: String,
    pub name: String,
    pub is_breakout: bool,
    pub published: bool,
    /// processing | processed | published | unpublished | deleted
    pub state: String,
    pub start_time: u64,
    pub end_time: u64,
    pub participants: u32,
    pub metadata: Vec<(String, String)>,
    pub playback: Vec<PlaybackFormat>,
    pub extra: Vec<Element>,
}

/// One `<format>` of a recording's `<playback>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaybackFormat {
    /// `presentation`, `video`, `podcast`, ...
    pub format_type: String,
    pub url: String,
    /// Milliseconds; `None` where the source did not say (the element is then left out, as
    /// Scalelite leaves it out).
    pub processing_time: Option<u64>,
    /// Minutes.
    pub length: u64,
    /// The `<preview>` element as received (thumbnails with attributes).
    pub preview: Option<Element>,
    pub extra: Vec<Element>,
}

impl Recording {
    /// The recording as listings show it once deleted: Scalelite keeps it (state `deleted`)
    /// without metadata or playback.
    pub fn mark_deleted(&mut self) {
        self.published = false;
        self.state = "deleted".into();
        self.metadata.clear();
        self.playback.clear();
    }

    /// Reads a `<recording>` element from its XML text (as the store keeps it).
    pub fn from_xml(xml: &str) -> Result<Recording, XmlError> {
        Recording::from_element(&Element::parse(xml)?)
    }

    pub fn from_element(element: &Element) -> Result<Recording, XmlError> {
        let mut r = FieldReader::new(element);
        let recording = Recording {
            record_id: r.string("recordID"),
            meeting_id: r.string("meetingID"),
            internal_meeting_id: r.string("internalMeetingID"),
            name: r.string("name"),
            is_breakout: r.bool("isBreakout")?,
            published: r.bool("published")?,
            state: r.string("state"),
            start_time: r.u64("startTime")?,
            end_time: r.u64("endTime")?,
            participants: r.u32("participants")?,
            metadata: r.pairs("metadata"),
            playback: match r.take("playback") {
                Some(p) => p
                    .children
                    .iter()
                    .map(PlaybackFormat::from_element)
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
            extra: Vec::new(),
        };
        Ok(Recording {
            extra: r.rest(),
            ..recording
        })
    }

    pub fn to_element(&self) -> Element {
        let mut playback = Element::new("playback");
        playback.children = self
            .playback
            .iter()
            .map(PlaybackFormat::to_element)
            .collect();
        let mut e = Element::new("recording")
            .with_text("recordID", &self.record_id)
            .with_text("meetingID", &self.meeting_id)
            .with_text("internalMeetingID", &self.internal_meeting_id)
            .with_text("name", &self.name)
            .with_text("isBreakout", self.is_breakout)
            .with_text("published", self.published)
            .with_text("state", &self.state)
            .with_text("startTime", self.start_time)
            .with_text("endTime", self.end_time)
            .with_text("participants", self.participants)
            .with(pairs_element("metadata", &self.metadata))
            .with(playback);
        e.children.extend(self.extra.iter().cloned());
        e
    }

    /// Whether getRecordings lists the metadata `key` (as Scalelite lists it): not the
    /// balancer's own (`conflux-*`), nor the ids and name BBB repeats from the recording's own
    /// elements.
    pub fn lists_meta(key: &str) -> bool {
        const REPEATED: [&str; 3] = ["isBreakout", "meetingId", "meetingName"];
        let prefix = crate::transfer::RESERVED_META_PREFIX;
        let reserved = key
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix));
        !reserved && !REPEATED.iter().any(|r| r.eq_ignore_ascii_case(key))
    }

    /// The metadata value of `key` (keys compare case-insensitively, as BBB lower-cases them).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// One thumbnail of a format's preview, as BBB lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub alt: String,
}

impl PlaybackFormat {
    /// A `<preview><images><image alt width height>URL</image>…` element of `thumbnails`
    /// (`None` without any).
    pub fn preview_of(thumbnails: &[Thumbnail]) -> Option<Element> {
        let mut images = Element::new("images");
        for t in thumbnails {
            let mut image = Element::text("image", t.url.clone());
            image.attrs = vec![
                ("alt".into(), t.alt.clone()),
                ("height".into(), t.height.to_string()),
                ("width".into(), t.width.to_string()),
            ];
            images.push(image);
        }
        (!thumbnails.is_empty()).then(|| Element::new("preview").with(images))
    }

    /// Keeps the preview's images for which `keep` (which may rewrite the URL, the image's
    /// text) returns true; the preview goes when no image is left.
    pub fn retain_thumbnails(&mut self, mut keep: impl FnMut(&mut String) -> bool) {
        let Some(preview) = &mut self.preview else {
            return;
        };
        for images in preview.children.iter_mut().filter(|c| c.name == "images") {
            images
                .children
                .retain_mut(|image| image.name != "image" || keep(&mut image.text));
        }
        let any = preview
            .children
            .iter()
            .any(|c| c.name == "images" && c.children.iter().any(|i| i.name == "image"));
        if !any {
            self.preview = None;
        }
    }

    pub fn from_element(element: &Element) -> Result<PlaybackFormat, XmlError> {
        let mut r = FieldReader::new(element);
        let format = PlaybackFormat {
            format_type: r.string("type"),
            url: r.string("url"),
            processing_time: r.opt_u64("processingTime")?,
            length: r.u64("length")?,
            preview: r.take("preview").cloned(),
            extra: Vec::new(),
        };
        Ok(PlaybackFormat {
            extra: r.rest(),
            ..format
        })
    }

    pub fn to_element(&self) -> Element {
        let mut e = Element::new("format")
            .with_text("type", &self.format_type)
            .with_text("url", &self.url);
        if let Some(ms) = self.processing_time {
            e.push(Element::text("processingTime", ms.to_string()));
        }
        e.push(Element::text("length", self.length.to_string()));
        if let Some(preview) = &self.preview {
            e.push(preview.clone());
        }
        e.children.extend(self.extra.iter().cloned());
        e
    }
}
