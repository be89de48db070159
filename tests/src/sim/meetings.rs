//! The meeting calls of the simulated node: create, join, end, isMeetingRunning,
//! getMeetingInfo, getMeetings, insertDocument and sendChatMessage, with bbb-web's validation
//! rules and error keys.

use std::time::Instant;

use conflux_shared::date::{java_date, now_ms};
use conflux_shared::query::{encode, sanitize};
use conflux_shared::response::{messages, Body, Created, Joined, Message};
use conflux_shared::{Element, Response};

use super::api::{xml_error, Answer, ApiRequest};
use super::state::{internal_meeting_id, random_token, Meeting, Role, User};
use super::Sim;

pub(crate) fn create(sim: &Sim, req: &ApiRequest) -> Answer {
    match validate_create(req) {
        Ok(params) => create_validated(sim, params),
        Err(message) => xml_error(message),
    }
}

/// The create parameters after validation.
struct CreateParams {
    meeting_id: String,
    name: String,
    attendee_pw: Option<String>,
    moderator_pw: Option<String>,
    voice_bridge: Option<String>,
    duration: u64,
    max_participants: u32,
    record: bool,
    logout_url: Option<String>,
    guest_policy: String,
    expire_no_join: u64,
    expire_last_left: u64,
    metadata: Vec<(String, String)>,
    is_breakout: bool,
    parent_meeting_id: Option<String>,
    sequence: Option<u64>,
    free_join: Option<bool>,
    dial_number: String,
}

fn validate_create(req: &ApiRequest) -> Result<CreateParams, Message> {
    let q = &req.params;
    let meeting_id = validate_meeting_id(q.get("meetingID"))?;
    let name = q
        .get_trimmed("name")
        .ok_or(messages::validation("You must provide a meeting name"))?;
    if !(2..=256).contains(&name.chars().count()) {
        return Err(messages::validation(
            "Meeting name must be between 2 and 256 characters",
        ));
    }
    let password = |key: &str| -> Result<Option<String>, Message> {
        match q.get(key).map(sanitize).filter(|p| !p.is_empty()) {
            Some(p) if !(2..=64).contains(&p.chars().count()) => Err(messages::PASSWORD_LENGTH),
            other => Ok(other),
        }
    };
    let voice_bridge = q.get_trimmed("voiceBridge");
    if voice_bridge
        .as_ref()
        .is_some_and(|v| v.parse::<u64>().is_err())
    {
        return Err(messages::validation(
            "Voice bridge must be an integral value",
        ));
    }
    let is_breakout = boolean(
        q.get_trimmed("isBreakout"),
        "Is breakout must be a boolean value (true or false)",
    )?;
    let parent_meeting_id = q.get_trimmed("parentMeetingID");
    if is_breakout && parent_meeting_id.is_none() {
        return Err(Message {
            key: "parentMeetingIDMissing",
            text: "No parent meeting ID was provided for the breakout room",
        });
    }
    let metadata = q
        .with_prefix("meta_")
        .filter(|(k, _)| is_meta_name(k))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Ok(CreateParams {
        meeting_id,
        name,
        attendee_pw: password("attendeePW")?,
        moderator_pw: password("moderatorPW")?,
        voice_bridge,
        duration: integer(
            q.get_trimmed("duration"),
            0,
            "Duration must be an integral value",
        )?,
        max_participants: u32::try_from(integer(
            q.get_trimmed("maxParticipants"),
            0,
            "Max participants must be an integral value",
        )?)
        .map_err(|_| messages::validation("Max participants must be an integral value"))?,
        record: boolean(
            q.get_trimmed("record"),
            "Record must be a boolean value (true or false)",
        )?,
        logout_url: q.get_trimmed("logoutURL"),
        guest_policy: q
            .get_trimmed("guestPolicy")
            .unwrap_or_else(|| "ALWAYS_ACCEPT".into())
            .to_ascii_uppercase(),
        expire_no_join: integer(
            q.get_trimmed("meetingExpireIfNoUserJoinedInMinutes"),
            5,
            "Invalid expiry",
        )?,
        expire_last_left: integer(
            q.get_trimmed("meetingExpireWhenLastUserLeftInMinutes"),
            1,
            "Invalid expiry",
        )?,
        metadata,
        is_breakout,
        sequence: is_breakout
            .then(|| {
                integer(
                    q.get_trimmed("sequence"),
                    0,
                    "Sequence must be an integral value",
                )
            })
            .transpose()?,
        free_join: is_breakout
            .then(|| {
                boolean(
                    q.get_trimmed("freeJoin"),
                    "Free join must be a boolean value (true or false)",
                )
            })
            .transpose()?,
        parent_meeting_id,
        dial_number: q
            .get_trimmed("dialNumber")
            .unwrap_or_else(|| "613-555-1234".into()),
    })
}

fn create_validated(sim: &Sim, p: CreateParams) -> Answer {
    let mut inner = sim.lock();
    if let Some(existing) = inner.meetings.get(&p.meeting_id).filter(|m| !m.is_ended()) {
        let same_passwords = match (&p.attendee_pw, &p.moderator_pw) {
            (None, None) => true,
            (Some(a), Some(m)) => *a == existing.attendee_pw && *m == existing.moderator_pw,
            _ => false,
        };
        if !same_passwords {
            return xml_error(messages::ID_NOT_UNIQUE);
        }
        return Answer::Xml(created(existing).with_message(messages::DUPLICATE_WARNING));
    }
    if let Some(parent) = &p.parent_meeting_id {
        let parent_exists = inner
            .meetings
            .values()
            .any(|m| !m.is_ended() && (m.internal_id == *parent || m.meeting_id == *parent));
        if p.is_breakout && !parent_exists {
            return xml_error(Message {
                key: "parentMeetingDoesNotExist",
                text: "No parent meeting exists for the breakout room",
            });
        }
    }
    let voice_bridge = match p.voice_bridge {
        Some(v) if inner.voice_bridge_in_use(&v) => {
            // bbb-web 2.7 reports this one in the legacy error-list shape.
            let mut response = Response::failed_with("", "");
            response.message_key = None;
            response.message = None;
            response.errors = vec![(
                messages::NON_UNIQUE_VOICE_BRIDGE.key.into(),
                messages::NON_UNIQUE_VOICE_BRIDGE.text.into(),
            )];
            return Answer::Xml(response);
        }
        Some(v) => v,
        None => inner.free_voice_bridge(),
    };
    let create_time = now_ms();
    let meeting = Meeting {
        internal_id: internal_meeting_id(&p.meeting_id, create_time),
        meeting_id: p.meeting_id.clone(),
        name: p.name,
        attendee_pw: p.attendee_pw.unwrap_or_else(|| random_token(8)),
        moderator_pw: p.moderator_pw.unwrap_or_else(|| random_token(8)),
        create_time,
        created_at: Instant::now(),
        voice_bridge,
        dial_number: p.dial_number,
        duration: p.duration,
        max_participants: p.max_participants,
        record: p.record,
        logout_url: p.logout_url,
        guest_policy: p.guest_policy,
        expire_no_join_minutes: p.expire_no_join,
        expire_last_left_minutes: p.expire_last_left,
        metadata: p.metadata,
        is_breakout: p.is_breakout,
        parent_meeting_id: p.parent_meeting_id.filter(|_| p.is_breakout),
        sequence: p.sequence,
        free_join: p.free_join,
        breakout_rooms: Vec::new(),
        users: Vec::new(),
        users_ever: 0,
        has_user_joined: false,
        last_left_at: None,
        start_time: create_time,
        end_time: 0,
        ended_at: None,
        forcibly_ended: false,
        documents: 0,
        chat_messages: 0,
    };
    if let Some(parent_id) = &meeting.parent_meeting_id {
        if let Some(parent) = inner
            .meetings
            .values_mut()
            .find(|m| m.internal_id == *parent_id || m.meeting_id == *parent_id)
        {
            parent.breakout_rooms.push(meeting.meeting_id.clone());
        }
    }
    let response = created(&meeting);
    tracing::debug!(meeting_id = %meeting.meeting_id, "Meeting created.");
    inner.meetings.insert(p.meeting_id, meeting);
    Answer::Xml(response)
}

fn created(m: &Meeting) -> Response {
    let mut response = Response::success(Body::Created(Box::new(Created {
        meeting_id: m.meeting_id.clone(),
        internal_meeting_id: m.internal_id.clone(),
        parent_meeting_id: m
            .parent_meeting_id
            .clone()
            .unwrap_or_else(|| "bbb-none".into()),
        attendee_pw: Some(m.attendee_pw.clone()),
        moderator_pw: Some(m.moderator_pw.clone()),
        create_time: m.create_time,
        voice_bridge: m.voice_bridge.clone(),
        dial_number: m.dial_number.clone(),
        create_date: java_date(m.create_time),
        has_user_joined: m.has_user_joined,
        duration: m.duration,
        has_been_forcibly_ended: m.forcibly_ended,
        extra: Vec::new(),
    })));
    response.message_key = Some(String::new());
    response.message = Some(String::new());
    response
}

pub(crate) fn join(sim: &Sim, req: &ApiRequest) -> Answer {
    let q = &req.params;
    let redirect = q
        .get_trimmed("redirect")
        .is_none_or(|r| !r.eq_ignore_ascii_case("false"));
    let mut inner = sim.lock();
    let outcome = (|| {
        let meeting_id = q
            .get_trimmed("meetingID")
            .ok_or(messages::MISSING_MEETING_ID)?;
        let full_name = q
            .get_trimmed("fullName")
            .ok_or(messages::MISSING_FULL_NAME)?;
        let meeting = inner
            .meetings
            .get_mut(&meeting_id)
            .ok_or(messages::INVALID_MEETING_ID)?;
        if meeting.forcibly_ended {
            return Err(messages::FORCIBLY_ENDED);
        }
        if meeting.is_ended() {
            return Err(messages::INVALID_MEETING_ID);
        }
        let role = match q
            .get_trimmed("role")
            .map(|r| r.to_ascii_uppercase())
            .as_deref()
        {
            Some("MODERATOR") => Role::Moderator,
            Some("VIEWER") => Role::Viewer,
            _ => match q.get("password") {
                Some(p) if p == meeting.moderator_pw => Role::Moderator,
                Some(p) if p == meeting.attendee_pw => Role::Viewer,
                _ => return Err(messages::INVALID_PASSWORD),
            },
        };
        if let Some(t) = q.get_trimmed("createTime") {
            if t != meeting.create_time.to_string() {
                return Err(messages::MISMATCH_CREATE_TIME);
            }
        }
        let max = usize::try_from(meeting.max_participants).unwrap_or(usize::MAX);
        if max > 0 && meeting.users.len() >= max {
            return Err(messages::MAX_PARTICIPANTS);
        }
        let is_guest = q.get_trimmed("guest").is_some_and(|g| g == "true");
        if is_guest && meeting.guest_policy == "ALWAYS_DENY" {
            return Err(messages::GUEST_DENIED);
        }
        let mut user = User::new(full_name, role, q.get_trimmed("userID"));
        user.customdata = q
            .with_prefix("userdata-")
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let waiting = is_guest && meeting.guest_policy == "ASK_MODERATOR";
        let joined = Joined {
            meeting_id: meeting.internal_id.clone(),
            user_id: user.internal_user_id.clone(),
            auth_token: random_token(12).to_lowercase(),
            session_token: user.session_token.clone(),
            guest_status: if waiting { "WAIT" } else { "ALLOW" }.into(),
            url: format!(
                "{}/html5client/join?sessionToken={}",
                sim.public_url, user.session_token
            ),
            extra: Vec::new(),
        };
        if !waiting {
            meeting.add_user(user);
        }
        Ok((joined, waiting))
    })();
    let logout_url = q
        .get_trimmed("meetingID")
        .and_then(|id| inner.meetings.get(&id))
        .and_then(|m| m.logout_url.clone());
    drop(inner);
    match (outcome, redirect) {
        (Ok((joined, waiting)), false) => {
            let message = if waiting {
                messages::GUEST_WAIT
            } else {
                messages::JOINED
            };
            Answer::Xml(Response::success(Body::Joined(Box::new(joined))).with_message(message))
        }
        (Ok((joined, _)), true) => Answer::Redirect(joined.url),
        (Err(message), false) => xml_error(message),
        (Err(message), true) => {
            let base = q
                .get_trimmed("errorRedirectUrl")
                .or_else(|| q.get_trimmed("redirectErrorUrl"))
                .or(logout_url)
                .unwrap_or_else(|| format!("{}/", sim.public_url));
            let errors = serde_json::json!([{ "message": message.text, "key": message.key }]);
            let sep = if base.contains('?') { '&' } else { '?' };
            Answer::Redirect(format!("{base}{sep}errors={}", encode(&errors.to_string())))
        }
    }
}

pub(crate) fn end(sim: &Sim, req: &ApiRequest) -> Answer {
    let Some(meeting_id) = req.params.get_trimmed("meetingID") else {
        return xml_error(messages::MISSING_MEETING_ID);
    };
    with_live_meeting(sim, &meeting_id, |meeting| {
        meeting.end(true);
        super::callbacks::meeting_ended(sim, meeting);
        Answer::Xml(
            Response::success(Body::Fields(Vec::new())).with_message(messages::SENT_END_MEETING),
        )
    })
}

pub(crate) fn is_meeting_running(sim: &Sim, req: &ApiRequest) -> Answer {
    let Some(meeting_id) = req.params.get_trimmed("meetingID") else {
        return xml_error(messages::MISSING_MEETING_ID);
    };
    let running = sim
        .lock()
        .meetings
        .get(&meeting_id)
        .is_some_and(Meeting::is_running);
    Answer::Xml(Response::fields(&[("running", &running.to_string())]))
}

pub(crate) fn get_meeting_info(sim: &Sim, req: &ApiRequest) -> Answer {
    let Some(meeting_id) = req.params.get_trimmed("meetingID") else {
        return xml_error(messages::MISSING_MEETING_ID);
    };
    match sim.lock().meetings.get(&meeting_id) {
        Some(meeting) => Answer::Xml(Response::success(Body::Meeting(Box::new(meeting.info())))),
        None => xml_error(messages::NOT_FOUND),
    }
}

pub(crate) fn get_meetings(sim: &Sim) -> Answer {
    let mut meetings: Vec<_> = sim.lock().meetings.values().map(Meeting::info).collect();
    meetings.sort_by_key(|m| m.create_time);
    let empty = meetings.is_empty();
    let response = Response::success(Body::Meetings(meetings));
    Answer::Xml(if empty {
        response.with_message(messages::NO_MEETINGS)
    } else {
        response
    })
}

pub(crate) fn insert_document(sim: &Sim, req: &ApiRequest) -> Answer {
    let Some(meeting_id) = req.params.get_trimmed("meetingID") else {
        return xml_error(messages::MISSING_MEETING_ID);
    };
    let documents = std::str::from_utf8(&req.body)
        .ok()
        .and_then(|xml| Element::parse(xml).ok())
        .filter(|root| root.name == "modules")
        .map(|root| {
            root.children
                .iter()
                .filter(|m| m.attr("name") == Some("presentation"))
                .map(|m| m.children.len())
                .sum::<usize>()
        });
    let Some(documents) = documents else {
        return xml_error(messages::validation("Request not recognized"));
    };
    with_live_meeting(sim, &meeting_id, |meeting| {
        meeting.documents += u32::try_from(documents).unwrap_or(u32::MAX);
        Answer::Xml(
            Response::success(Body::Fields(Vec::new()))
                .with_message(messages::PRESENTATION_UPLOADING),
        )
    })
}

pub(crate) fn send_chat_message(sim: &Sim, req: &ApiRequest) -> Answer {
    let q = &req.params;
    let Some(meeting_id) = q.get_trimmed("meetingID") else {
        return xml_error(messages::MISSING_MEETING_ID);
    };
    let Some(message) = q.get_trimmed("message") else {
        return xml_error(messages::validation("You must provide the param message"));
    };
    if message.chars().count() > 500 {
        return xml_error(messages::validation(
            "Param message must be between 1 and 500 characters",
        ));
    }
    if q.get("userName").is_some_and(|n| n.chars().count() > 255) {
        return xml_error(messages::validation(
            "Param userName must not exceed 255 characters",
        ));
    }
    with_live_meeting(sim, &meeting_id, |meeting| {
        meeting.chat_messages += 1;
        let mut response = Response::success(Body::Fields(Vec::new()));
        response.message_key = Some(String::new());
        response.message = Some(String::new());
        Answer::Xml(response)
    })
}

/// bbb-web's meeting id rules: present, 2-256 characters, no comma, no blanks around it.
fn validate_meeting_id(raw: Option<&str>) -> Result<String, Message> {
    let raw = raw.unwrap_or_default();
    let id = sanitize(raw);
    if id.is_empty() {
        return Err(messages::MISSING_MEETING_ID);
    }
    if id != raw {
        return Err(messages::validation("Invalid meeting ID"));
    }
    if !(2..=256).contains(&id.chars().count()) {
        return Err(messages::validation(
            "Meeting ID must be between 2 and 256 characters",
        ));
    }
    if id.contains(',') {
        return Err(messages::validation("Meeting ID cannot contain ','"));
    }
    Ok(id)
}

/// BBB keeps `meta_` names matching `[a-zA-Z][a-zA-Z0-9-]*` and silently drops the others.
fn is_meta_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn boolean(value: Option<String>, error: &'static str) -> Result<bool, Message> {
    match value.map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(messages::validation(error)),
    }
}

fn integer(value: Option<String>, default: u64, error: &'static str) -> Result<u64, Message> {
    value.map_or(Ok(default), |v| {
        v.parse().map_err(|_| messages::validation(error))
    })
}

impl Meeting {
    pub(crate) fn add_user(&mut self, user: User) {
        self.users.push(user);
        self.users_ever += 1;
        self.has_user_joined = true;
        self.last_left_at = None;
    }

    /// Ends the meeting: users leave, timers stop. `forcibly` is true for the `end` call.
    pub(crate) fn end(&mut self, forcibly: bool) {
        self.users.clear();
        self.end_time = now_ms();
        self.ended_at = Some(Instant::now());
        self.forcibly_ended = forcibly;
        tracing::debug!(meeting_id = %self.meeting_id, forcibly, "Meeting ended.");
    }
}

/// Runs `f` on the live meeting `meeting_id`, or answers notFound.
fn with_live_meeting(
    sim: &Sim,
    meeting_id: &str,
    f: impl FnOnce(&mut Meeting) -> Answer,
) -> Answer {
    let mut inner = sim.lock();
    match inner.meetings.get_mut(meeting_id).filter(|m| !m.is_ended()) {
        Some(meeting) => f(meeting),
        None => xml_error(messages::NOT_FOUND),
    }
}
