//! The answers of `create` and of `join` with `redirect=false`.

use crate::response::meeting::push_opt;
use crate::response::reader::FieldReader;
use crate::xml::{Element, XmlError};

/// The body of a successful `create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Created {
    pub meeting_id: String,
    pub internal_meeting_id: String,
    /// `bbb-none` unless the meeting is a breakout room.
    pub parent_meeting_id: String,
    pub attendee_pw: Option<String>,
    pub moderator_pw: Option<String>,
    pub create_time: u64,
    pub voice_bridge: String,
    pub dial_number: String,
    pub create_date: String,
    pub has_user_joined: bool,
    pub duration: u64,
    pub has_been_forcibly_ended: bool,
    pub extra: Vec<Element>,
}

/// The body of a `join` answered with `redirect=false`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joined {
    /// The internal meeting id.
    pub meeting_id: String,
    pub user_id: String,
    pub auth_token: String,
    pub session_token: String,
    /// ALLOW | WAIT | DENY
    pub guest_status: String,
    pub url: String,
    pub extra: Vec<Element>,
}

impl Created {
    pub(crate) fn read(r: &mut FieldReader<'_>) -> Result<Created, XmlError> {
        Ok(Created {
            meeting_id: r.string("meetingID"),
            internal_meeting_id: r.string("internalMeetingID"),
            parent_meeting_id: r.string("parentMeetingID"),
            attendee_pw: r.opt_string("attendeePW"),
            moderator_pw: r.opt_string("moderatorPW"),
            create_time: r.u64("createTime")?,
            voice_bridge: r.string("voiceBridge"),
            dial_number: r.string("dialNumber"),
            create_date: r.string("createDate"),
            has_user_joined: r.bool("hasUserJoined")?,
            duration: r.u64("duration")?,
            has_been_forcibly_ended: r.bool("hasBeenForciblyEnded")?,
            extra: Vec::new(),
        })
    }

    pub(crate) fn write(&self, e: Element) -> Element {
        let e = e
            .with_text("meetingID", &self.meeting_id)
            .with_text("internalMeetingID", &self.internal_meeting_id)
            .with_text("parentMeetingID", &self.parent_meeting_id);
        let e = push_opt(e, "attendeePW", &self.attendee_pw);
        let mut e = push_opt(e, "moderatorPW", &self.moderator_pw)
            .with_text("createTime", self.create_time)
            .with_text("voiceBridge", &self.voice_bridge)
            .with_text("dialNumber", &self.dial_number)
            .with_text("createDate", &self.create_date)
            .with_text("hasUserJoined", self.has_user_joined)
            .with_text("duration", self.duration)
            .with_text("hasBeenForciblyEnded", self.has_been_forcibly_ended);
        e.children.extend(self.extra.iter().cloned());
        e
    }
}

impl Joined {
    pub(crate) fn read(r: &mut FieldReader<'_>) -> Joined {
        Joined {
            meeting_id: r.string("meeting_id"),
            user_id: r.string("user_id"),
            auth_token: r.string("auth_token"),
            session_token: r.string("session_token"),
            guest_status: r.string("guestStatus"),
            url: r.string("url"),
            extra: Vec::new(),
        }
    }

    pub(crate) fn write(&self, e: Element) -> Element {
        let mut e = e
            .with_text("meeting_id", &self.meeting_id)
            .with_text("user_id", &self.user_id)
            .with_text("auth_token", &self.auth_token)
            .with_text("session_token", &self.session_token)
            .with_text("guestStatus", &self.guest_status)
            .with_text("url", &self.url);
        e.children.extend(self.extra.iter().cloned());
        e
    }
}
