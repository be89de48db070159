//! [`Call`]: the BBB API calls a balancer answers, by their names on the wire, with the HTTP
//! methods BBB 3.0 maps for each. One table for dispatch, method checks and metric labels.

/// A BBB API call (`/bigbluebutton/api/<name>`; the empty name is the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Index,
    Create,
    Join,
    End,
    IsMeetingRunning,
    GetMeetingInfo,
    GetMeetings,
    InsertDocument,
    SendChatMessage,
    GetRecordings,
    PublishRecordings,
    DeleteRecordings,
    UpdateRecordings,
    GetRecordingTextTracks,
    /// Mconf-LB's list of servers.
    GetServers,
    /// Mconf-LB's meeting history.
    GetMeetingEvents,
}

/// Which HTTP methods a call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Methods {
    Get,
    Post,
    GetOrPost,
}

impl Call {
    /// Every call, in the order the metrics list them.
    pub const ALL: [Call; 16] = [
        Call::Index,
        Call::Create,
        Call::Join,
        Call::End,
        Call::IsMeetingRunning,
        Call::GetMeetingInfo,
        Call::GetMeetings,
        Call::InsertDocument,
        Call::SendChatMessage,
        Call::GetRecordings,
        Call::PublishRecordings,
        Call::DeleteRecordings,
        Call::UpdateRecordings,
        Call::GetRecordingTextTracks,
        Call::GetServers,
        Call::GetMeetingEvents,
    ];

    /// The call of a name on the wire (case-sensitive, as bbb-web); `None` for an unknown one.
    pub fn from_name(name: &str) -> Option<Call> {
        if name.is_empty() {
            return Some(Call::Index);
        }
        Call::ALL
            .into_iter()
            .find(|c| *c != Call::Index && c.name() == name)
    }

    /// The name on the wire (`index` for the empty one, as metrics label it).
    pub fn name(self) -> &'static str {
        match self {
            Call::Index => "index",
            Call::Create => "create",
            Call::Join => "join",
            Call::End => "end",
            Call::IsMeetingRunning => "isMeetingRunning",
            Call::GetMeetingInfo => "getMeetingInfo",
            Call::GetMeetings => "getMeetings",
            Call::InsertDocument => "insertDocument",
            Call::SendChatMessage => "sendChatMessage",
            Call::GetRecordings => "getRecordings",
            Call::PublishRecordings => "publishRecordings",
            Call::DeleteRecordings => "deleteRecordings",
            Call::UpdateRecordings => "updateRecordings",
            Call::GetRecordingTextTracks => "getRecordingTextTracks",
            Call::GetServers => "getServers",
            Call::GetMeetingEvents => "getMeetingEvents",
        }
    }

    /// The HTTP methods BBB 3.0 accepts for the call.
    pub fn methods(self) -> Methods {
        match self {
            Call::Join
            | Call::SendChatMessage
            | Call::PublishRecordings
            | Call::DeleteRecordings => Methods::Get,
            Call::InsertDocument => Methods::Post,
            _ => Methods::GetOrPost,
        }
    }

    /// Whether the call takes a request of this method (`GET`, `POST`).
    pub fn allows(self, method: &str) -> bool {
        match self.methods() {
            Methods::Get => method == "GET",
            Methods::Post => method == "POST",
            Methods::GetOrPost => method == "GET" || method == "POST",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_methods_follow_bbb() {
        for call in Call::ALL {
            let name = if call == Call::Index { "" } else { call.name() };
            assert_eq!(Call::from_name(name), Some(call));
        }
        assert_eq!(
            Call::from_name("GetMeetings"),
            None,
            "names are case-sensitive"
        );
        assert_eq!(
            Call::from_name("index"),
            None,
            "the index has no name on the wire"
        );
        assert!(Call::Join.allows("GET") && !Call::Join.allows("POST"));
        assert!(Call::InsertDocument.allows("POST") && !Call::InsertDocument.allows("GET"));
        assert!(Call::Create.allows("POST") && !Call::Create.allows("PUT"));
    }
}
