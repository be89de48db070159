//! What a simulated BBB node holds in memory: meetings with their users, recordings, the
//! injected fault. One `std::sync::Mutex` guards it; it is never held across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use conflux_shared::date::java_date;
use conflux_shared::response::{
    Attendee, Meeting as MeetingInfo, PlaybackFormat, Recording, Thumbnail,
};
use conflux_shared::Algorithm;
use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How many ended meetings are remembered (to produce their recordings later).
const ENDED_HISTORY: usize = 10_000;

#[derive(Default)]
pub struct Inner {
    /// Live (and recently ended) meetings by external meeting id.
    pub meetings: HashMap<String, Meeting>,
    /// Ended meetings, newest last, kept so that a recording can still be produced.
    pub ended: VecDeque<Meeting>,
    /// Recordings by record id.
    pub recordings: BTreeMap<String, Recording>,
    /// API calls answered, by call name (`/sim/status` shows them: how often a node is polled).
    pub calls: BTreeMap<String, u64>,
}

/// A meeting as the simulator keeps it.
#[derive(Debug, Clone)]
pub struct Meeting {
    pub meeting_id: String,
    pub internal_id: String,
    pub name: String,
    pub attendee_pw: String,
    pub moderator_pw: String,
    pub create_time: u64,
    pub created_at: Instant,
    pub voice_bridge: String,
    pub dial_number: String,
    /// Minutes; 0 = unlimited.
    pub duration: u64,
    pub max_participants: u32,
    pub record: bool,
    pub logout_url: Option<String>,
    pub guest_policy: String,
    pub expire_no_join_minutes: u64,
    pub expire_last_left_minutes: u64,
    pub metadata: Vec<(String, String)>,
    pub is_breakout: bool,
    pub parent_meeting_id: Option<String>,
    pub sequence: Option<u64>,
    pub free_join: Option<bool>,
    pub breakout_rooms: Vec<String>,
    pub users: Vec<User>,
    /// Users that ever joined (BBB's recording `participants`).
    pub users_ever: u32,
    pub has_user_joined: bool,
    pub last_left_at: Option<Instant>,
    pub start_time: u64,
    pub end_time: u64,
    pub ended_at: Option<Instant>,
    pub forcibly_ended: bool,
    pub documents: u32,
    pub chat_messages: u32,
}

/// A simulated participant.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub user_id: String,
    pub internal_user_id: String,
    pub full_name: String,
    pub role: Role,
    pub audio: Audio,
    pub video_streams: u32,
    pub is_presenter: bool,
    pub customdata: Vec<(String, String)>,
    #[serde(skip)]
    pub session_token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Moderator,
    Viewer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audio {
    #[default]
    None,
    /// Microphone.
    Voice,
    /// Listen-only.
    Listen,
}

/// An injected failure of the BBB API (the control API stays up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum Fault {
    #[default]
    Ok,
    /// Answer correctly after `delay_ms`.
    Slow { delay_ms: u64 },
    /// Answer HTTP 500.
    Error,
    /// Accept the connection and never answer.
    Hang,
}

impl Meeting {
    pub fn is_ended(&self) -> bool {
        self.ended_at.is_some()
    }

    pub fn is_running(&self) -> bool {
        !self.is_ended() && !self.users.is_empty()
    }

    /// The getMeetingInfo view of this meeting.
    pub fn info(&self) -> MeetingInfo {
        let count = |f: &dyn Fn(&User) -> bool| {
            u32::try_from(self.users.iter().filter(|u| f(u)).count()).unwrap_or(u32::MAX)
        };
        MeetingInfo {
            meeting_name: self.name.clone(),
            meeting_id: self.meeting_id.clone(),
            internal_meeting_id: self.internal_id.clone(),
            create_time: self.create_time,
            create_date: java_date(self.create_time),
            voice_bridge: self.voice_bridge.clone(),
            dial_number: self.dial_number.clone(),
            attendee_pw: Some(self.attendee_pw.clone()),
            moderator_pw: Some(self.moderator_pw.clone()),
            running: self.is_running(),
            duration: self.duration,
            has_user_joined: self.has_user_joined,
            recording: self.record,
            has_been_forcibly_ended: self.forcibly_ended,
            start_time: self.start_time,
            end_time: self.end_time,
            participant_count: count(&|_| true),
            listener_count: count(&|u| u.audio == Audio::Listen),
            voice_participant_count: count(&|u| u.audio == Audio::Voice),
            video_count: self.users.iter().map(|u| u.video_streams).sum(),
            max_users: self.max_participants,
            moderator_count: count(&|u| u.role == Role::Moderator),
            attendees: self.users.iter().map(User::attendee).collect(),
            metadata: self.metadata.clone(),
            is_breakout: self.is_breakout,
            parent_meeting_id: self.parent_meeting_id.clone(),
            sequence: self.sequence,
            free_join: self.free_join,
            breakout_rooms: (!self.breakout_rooms.is_empty()).then(|| self.breakout_rooms.clone()),
            extra: Vec::new(),
        }
    }

    /// The recording this meeting produces, as getRecordings lists it.
    pub fn recording(&self, public_url: &str, length_minutes: u64) -> Recording {
        let mut metadata = vec![
            ("isBreakout".to_owned(), self.is_breakout.to_string()),
            ("meetingName".to_owned(), self.name.clone()),
            ("meetingId".to_owned(), self.meeting_id.clone()),
        ];
        metadata.extend(self.metadata.iter().cloned());
        Recording {
            record_id: self.internal_id.clone(),
            meeting_id: self.meeting_id.clone(),
            internal_meeting_id: self.internal_id.clone(),
            name: self.name.clone(),
            is_breakout: self.is_breakout,
            published: true,
            state: "published".into(),
            start_time: self.start_time,
            end_time: self.end_time.max(self.start_time),
            participants: self.users_ever,
            metadata,
            playback: vec![PlaybackFormat {
                format_type: "presentation".into(),
                url: format!(
                    "{public_url}/playback/presentation/2.3/{}",
                    self.internal_id
                ),
                processing_time: Some(1000),
                length: length_minutes,
                preview: PlaybackFormat::preview_of(&[Thumbnail {
                    url: format!(
                        "{public_url}/presentation/{}/{}",
                        self.internal_id,
                        super::recordings::THUMBNAIL
                    ),
                    width: 176,
                    height: 136,
                    alt: "Welcome".into(),
                }]),
                extra: Vec::new(),
            }],
            extra: Vec::new(),
        }
    }
}

impl User {
    pub fn new(full_name: String, role: Role, user_id: Option<String>) -> User {
        let internal_user_id = format!("w_{}", random_token(12).to_lowercase());
        User {
            user_id: user_id.unwrap_or_else(|| internal_user_id.clone()),
            internal_user_id,
            full_name,
            role,
            audio: Audio::None,
            video_streams: 0,
            is_presenter: false,
            customdata: Vec::new(),
            session_token: random_token(16).to_lowercase(),
        }
    }

    fn attendee(&self) -> Attendee {
        Attendee {
            user_id: self.user_id.clone(),
            full_name: self.full_name.clone(),
            role: match self.role {
                Role::Moderator => "MODERATOR",
                Role::Viewer => "VIEWER",
            }
            .into(),
            is_presenter: self.is_presenter,
            is_listening_only: self.audio == Audio::Listen,
            has_joined_voice: self.audio == Audio::Voice,
            has_video: self.video_streams > 0,
            client_type: "HTML5".into(),
            customdata: self.customdata.clone(),
            extra: Vec::new(),
        }
    }
}

impl Inner {
    /// Remembers an ended meeting, dropping the oldest beyond the history limit.
    pub fn remember_ended(&mut self, meeting: Meeting) {
        self.ended.push_back(meeting);
        while self.ended.len() > ENDED_HISTORY {
            self.ended.pop_front();
        }
    }

    /// A voice bridge that no live meeting uses: 5 digits (70000-79999) as BBB defaults, or 6
    /// digits once the 5-digit range is crowded.
    pub fn free_voice_bridge(&self) -> String {
        let mut rng = rand::rng();
        let mut attempt = 0u32;
        loop {
            let range = if attempt < 64 {
                70_000..80_000
            } else {
                100_000..1_000_000
            };
            let candidate = rng.random_range(range).to_string();
            if !self.voice_bridge_in_use(&candidate) {
                return candidate;
            }
            attempt = attempt.saturating_add(1);
        }
    }

    pub fn voice_bridge_in_use(&self, voice_bridge: &str) -> bool {
        self.meetings
            .values()
            .any(|m| !m.is_ended() && m.voice_bridge == voice_bridge)
    }
}

/// BBB's internal meeting id: `sha1hex(meetingID)-createTime`.
pub fn internal_meeting_id(meeting_id: &str, create_time: u64) -> String {
    let digest = Algorithm::Sha1.digest(&[meeting_id.as_bytes()]);
    format!("{}-{create_time}", hex::encode(digest))
}

/// A random alphanumeric token, as BBB uses for passwords and session tokens.
pub fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}
