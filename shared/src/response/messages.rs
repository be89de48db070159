//! BBB's message keys and their English texts, as bbb-web 2.7/3.0 sends them.
//!
//! `messageKey` is the stable part clients match on; the texts are copied verbatim (two spaces
//! after some full stops included) because some clients show them to users.

/// A `messageKey` with its `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub key: &'static str,
    pub text: &'static str,
}

const fn m(key: &'static str, text: &'static str) -> Message {
    Message { key, text }
}

pub const CHECKSUM_ERROR: Message = m("checksumError", "Checksums do not match");
/// The text the recording calls (RecordingController) still use.
pub const CHECKSUM_ERROR_LEGACY: Message = m(
    "checksumError",
    "You did not pass the checksum security check",
);
pub const MISSING_MEETING_ID: Message = m("missingParamMeetingID", "You must provide a meeting ID");
pub const MISSING_FULL_NAME: Message = m("missingParamFullName", "You must provide your name");
pub const ID_NOT_UNIQUE: Message = m(
    "idNotUnique",
    "A meeting already exists with that meeting ID.  Please use a different meeting ID.",
);
pub const DUPLICATE_WARNING: Message = m(
    "duplicateWarning",
    "This conference was already in existence and may currently be in progress.",
);
pub const NON_UNIQUE_VOICE_BRIDGE: Message = m(
    "nonUniqueVoiceBridge",
    "The selected voice bridge is already in use.",
);
pub const NOT_FOUND: Message = m("notFound", "A meeting with that ID does not exist");
pub const RECORDINGS_NOT_FOUND: Message = m("notFound", "We could not find recordings");
/// Scalelite's answer to a join of a meeting whose node is disabled or offline.
pub const SERVER_UNAVAILABLE: Message = m(
    "serverUnavailable",
    "The server for this meeting is disabled/offline.",
);
pub const INVALID_MEETING_ID: Message = m(
    "invalidMeetingIdentifier",
    "A meeting with that ID does not exist",
);
pub const FORCIBLY_ENDED: Message = m(
    "meetingForciblyEnded",
    "You can not join a meeting that has already been forcibly ended",
);
pub const INVALID_PASSWORD: Message = m(
    "invalidPassword",
    "The provided password is neither a moderator or attendee password",
);
pub const PASSWORD_LENGTH: Message = m(
    "invalidPassword",
    "Passwords must be between 2 and 64 character in length",
);
pub const MISMATCH_CREATE_TIME: Message = m(
    "mismatchCreateTimeParam",
    "The createTime parameter submitted mismatches with the current meeting.",
);
pub const MAX_PARTICIPANTS: Message = m(
    "maxParticipantsReached",
    "The number of participants allowed for this meeting has been reached.",
);
pub const GUEST_DENIED: Message = m(
    "guestDeniedAccess",
    "You have been denied access to this meeting based on the meeting's guest policy",
);
pub const NO_MEETINGS: Message = m("noMeetings", "no meetings were found on this server");
pub const NO_RECORDINGS: Message = m(
    "noRecordings",
    "There are no recordings for the meeting(s).",
);
pub const MISSING_RECORD_ID: Message = m("missingParamRecordID", "You must specify a recordID.");
pub const MISSING_PUBLISH: Message = m(
    "missingParamPublish",
    "You must specify a publish value true or false.",
);
pub const UNSUPPORTED_CONTENT_TYPE: Message = m(
    "unsupportedContentType",
    "POST request Content-Type is missing or unsupported",
);
pub const SENT_END_MEETING: Message = m(
    "sentEndMeetingRequest",
    "A request to end the meeting was sent.  Please wait a few seconds, and then use the getMeetingInfo or isMeetingRunning API calls to verify that it was ended.",
);
pub const JOINED: Message = m("successfullyJoined", "You have joined successfully.");
pub const GUEST_WAIT: Message = m("guestWait", "Guest waiting for approval to join meeting.");
pub const PRESENTATION_UPLOADING: Message = m("", "Presentation is being uploaded");
pub const INTERNAL_ERROR: Message = m(
    "internalError",
    "An unexpected error occurred, please try again later.",
);
pub const UNSUPPORTED_REQUEST: Message = m("unsupportedRequest", "This request is not supported.");
pub const PERMISSION_DENIED: Message = m(
    "permissionDenied",
    "This application is not currently allowed to access this API.",
);
pub const INVALID_PARAMETERS: Message = m(
    "invalidParameters",
    "The URL you supplied has parameters that are not accepted.",
);
// The balancer's own refusals of a request it could not read (no BBB text exists for them).
pub const BODY_TOO_LARGE: Message = m("requestTooLarge", "The request body is too large.");
pub const BODY_TIMEOUT: Message = m("requestTimeout", "The request body did not arrive in time.");
pub const BODY_MALFORMED: Message = m("requestMalformed", "The request body could not be read.");
pub const TOO_MANY_FAILURES: Message = m(
    "tooManyFailures",
    "Too many failed checksums from this client; try again later.",
);

/// A `validationError` with its specific text.
pub const fn validation(text: &'static str) -> Message {
    m("validationError", text)
}
