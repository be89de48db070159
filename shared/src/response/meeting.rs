//! A meeting as getMeetingInfo and getMeetings show it, with its attendees and metadata.
//!
//! Field order follows bbb-web 2.7/3.0 templates; children this type does not know are kept in
//! `extra` and written back after the known ones.

use crate::response::reader::{pairs_element, FieldReader};
use crate::xml::{Element, XmlError};

/// One meeting (the body of getMeetingInfo, or one `<meeting>` of getMeetings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meeting {
    pub meeting_name: String,
    pub meeting_id: String,
    pub internal_meeting_id: String,
    pub create_time: u64,
    pub create_date: String,
    pub voice_bridge: String,
    pub dial_number: String,
    pub attendee_pw: Option<String>,
    pub moderator_pw: Option<String>,
    pub running: bool,
    pub duration: u64,
    pub has_user_joined: bool,
    pub recording: bool,
    pub has_been_forcibly_ended: bool,
    pub start_time: u64,
    pub end_time: u64,
    pub participant_count: u32,
    pub listener_count: u32,
    pub voice_participant_count: u32,
    pub video_count: u32,
    pub max_users: u32,
    pub moderator_count: u32,
    pub attendees: Vec<Attendee>,
    /// Metadata keys as BBB reports them (lower-cased `meta_` names), in order.
    pub metadata: Vec<(String, String)>,
    pub is_breakout: bool,
    pub parent_meeting_id: Option<String>,
    pub sequence: Option<u64>,
    pub free_join: Option<bool>,
    /// External ids of this meeting's breakout rooms, when it has any.
    pub breakout_rooms: Option<Vec<String>>,
    pub extra: Vec<Element>,
}

/// One `<attendee>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attendee {
    pub user_id: String,
    pub full_name: String,
    /// `MODERATOR` or `VIEWER`.
    pub role: String,
    pub is_presenter: bool,
    pub is_listening_only: bool,
    pub has_joined_voice: bool,
    pub has_video: bool,
    pub client_type: String,
    /// The `userdata-*` values given on join, names without the prefix.
    pub customdata: Vec<(String, String)>,
    pub extra: Vec<Element>,
}

impl Meeting {
    /// Reads the fields of a meeting from `element` (a `<response>` or a `<meeting>`); the
    /// envelope's own children are left to the caller.
    pub(crate) fn read(r: &mut FieldReader<'_>) -> Result<Meeting, XmlError> {
        Ok(Meeting {
            meeting_name: r.string("meetingName"),
            meeting_id: r.string("meetingID"),
            internal_meeting_id: r.string("internalMeetingID"),
            create_time: r.u64("createTime")?,
            create_date: r.string("createDate"),
            voice_bridge: r.string("voiceBridge"),
            dial_number: r.string("dialNumber"),
            attendee_pw: r.opt_string("attendeePW"),
            moderator_pw: r.opt_string("moderatorPW"),
            running: r.bool("running")?,
            duration: r.u64("duration")?,
            has_user_joined: r.bool("hasUserJoined")?,
            recording: r.bool("recording")?,
            has_been_forcibly_ended: r.bool("hasBeenForciblyEnded")?,
            start_time: r.u64("startTime")?,
            end_time: r.u64("endTime")?,
            participant_count: r.u32("participantCount")?,
            listener_count: r.u32("listenerCount")?,
            voice_participant_count: r.u32("voiceParticipantCount")?,
            video_count: r.u32("videoCount")?,
            max_users: r.u32("maxUsers")?,
            moderator_count: r.u32("moderatorCount")?,
            attendees: match r.take("attendees") {
                Some(list) => list
                    .children
                    .iter()
                    .map(Attendee::from_element)
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
            metadata: r.pairs("metadata"),
            is_breakout: r.bool("isBreakout")?,
            parent_meeting_id: r.opt_string("parentMeetingID"),
            sequence: r.opt_u64("sequence")?,
            free_join: r.opt_bool("freeJoin")?,
            breakout_rooms: r
                .take("breakoutRooms")
                .map(|e| e.children.iter().map(|c| c.text.clone()).collect()),
            extra: Vec::new(),
        })
    }

    /// Parses a `<meeting>` element.
    pub fn from_element(element: &Element) -> Result<Meeting, XmlError> {
        let mut r = FieldReader::new(element);
        let mut meeting = Meeting::read(&mut r)?;
        meeting.extra = r.rest();
        Ok(meeting)
    }

    /// `e` with the fields up to and including `<metadata>` appended.
    pub(crate) fn write_head(&self, e: Element) -> Element {
        let e = e
            .with_text("meetingName", &self.meeting_name)
            .with_text("meetingID", &self.meeting_id)
            .with_text("internalMeetingID", &self.internal_meeting_id)
            .with_text("createTime", self.create_time)
            .with_text("createDate", &self.create_date)
            .with_text("voiceBridge", &self.voice_bridge)
            .with_text("dialNumber", &self.dial_number);
        let mut e = push_opt(e, "attendeePW", &self.attendee_pw);
        e = push_opt(e, "moderatorPW", &self.moderator_pw)
            .with_text("running", self.running)
            .with_text("duration", self.duration)
            .with_text("hasUserJoined", self.has_user_joined)
            .with_text("recording", self.recording)
            .with_text("hasBeenForciblyEnded", self.has_been_forcibly_ended)
            .with_text("startTime", self.start_time)
            .with_text("endTime", self.end_time)
            .with_text("participantCount", self.participant_count)
            .with_text("listenerCount", self.listener_count)
            .with_text("voiceParticipantCount", self.voice_participant_count)
            .with_text("videoCount", self.video_count)
            .with_text("maxUsers", self.max_users)
            .with_text("moderatorCount", self.moderator_count);
        let mut attendees = Element::new("attendees");
        attendees.children = self.attendees.iter().map(Attendee::to_element).collect();
        e.with(attendees)
            .with(pairs_element("metadata", &self.metadata))
    }

    /// Appends the fields after `<metadata>` (breakout data and unknown children) to `out`.
    pub(crate) fn write_tail(&self, out: &mut Element) {
        out.push(Element::text("isBreakout", self.is_breakout.to_string()));
        if let Some(parent) = &self.parent_meeting_id {
            out.push(Element::text("parentMeetingID", parent.clone()));
        }
        if let Some(sequence) = self.sequence {
            out.push(Element::text("sequence", sequence.to_string()));
        }
        if let Some(free_join) = self.free_join {
            out.push(Element::text("freeJoin", free_join.to_string()));
        }
        if let Some(rooms) = &self.breakout_rooms {
            let mut list = Element::new("breakoutRooms");
            for room in rooms {
                list.push(Element::text("breakout", room.clone()));
            }
            out.push(list);
        }
        out.children.extend(self.extra.iter().cloned());
    }

    /// The `<meeting>` element of a getMeetings answer.
    pub fn to_element(&self) -> Element {
        let mut e = self.write_head(Element::new("meeting"));
        self.write_tail(&mut e);
        e
    }

    /// Users with microphone or listen-only audio, counted once each.
    pub fn audio_users(&self) -> u32 {
        let n = self
            .attendees
            .iter()
            .filter(|a| a.has_joined_voice || a.is_listening_only)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

impl Attendee {
    pub fn from_element(element: &Element) -> Result<Attendee, XmlError> {
        let mut r = FieldReader::new(element);
        let attendee = Attendee {
            user_id: r.string("userID"),
            full_name: r.string("fullName"),
            role: r.string("role"),
            is_presenter: r.bool("isPresenter")?,
            is_listening_only: r.bool("isListeningOnly")?,
            has_joined_voice: r.bool("hasJoinedVoice")?,
            has_video: r.bool("hasVideo")?,
            client_type: r.string("clientType"),
            customdata: r.pairs("customdata"),
            extra: Vec::new(),
        };
        Ok(Attendee {
            extra: r.rest(),
            ..attendee
        })
    }

    pub fn to_element(&self) -> Element {
        let mut e = Element::new("attendee")
            .with_text("userID", &self.user_id)
            .with_text("fullName", &self.full_name)
            .with_text("role", &self.role)
            .with_text("isPresenter", self.is_presenter)
            .with_text("isListeningOnly", self.is_listening_only)
            .with_text("hasJoinedVoice", self.has_joined_voice)
            .with_text("hasVideo", self.has_video)
            .with_text("clientType", &self.client_type);
        if !self.customdata.is_empty() {
            e.push(pairs_element("customdata", &self.customdata));
        }
        e.children.extend(self.extra.iter().cloned());
        e
    }

    pub fn is_moderator(&self) -> bool {
        self.role.eq_ignore_ascii_case("MODERATOR")
    }
}

pub(crate) fn push_opt(e: Element, name: &str, value: &Option<String>) -> Element {
    match value {
        Some(v) => e.with_text(name, v),
        None => e,
    }
}
