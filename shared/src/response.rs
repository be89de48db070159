//! Typed BBB responses: the `<response>` envelope (returncode, messageKey, message) and its body.
//!
//! A [`Response`] is read from and written to the lossless [`Element`] tree, so children it does
//! not know (plugin fields, newer BBB fields, the legacy `<errors>` list) survive a round trip.
//! `messageKey`/`message` are written where bbb-web puts them for each kind of body.

mod meeting;
pub mod messages;
mod reader;
mod recording;
mod recording_query;
mod session;

pub use meeting::{Attendee, Meeting};
pub use messages::Message;
pub use recording::{PlaybackFormat, Recording, Thumbnail};
pub use recording_query::{MetaRule, RecordingQuery};
pub use session::{Created, Joined};

use crate::xml::{Element, XmlError};
use reader::FieldReader;

/// `<returncode>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnCode {
    Success,
    Failed,
}

/// A whole BBB XML answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub returncode: ReturnCode,
    pub message_key: Option<String>,
    pub message: Option<String>,
    /// The legacy error list (`<errors><error><key/><message/></error></errors>`), still used by
    /// bbb-web 2.7 for `nonUniqueVoiceBridge`. Pairs of (key, message).
    pub errors: Vec<(String, String)>,
    pub body: Body,
}

/// What a response carries besides its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Any other answer (index, isMeetingRunning, publish, hooks...): its children in order.
    Fields(Vec<Element>),
    Created(Box<Created>),
    Meeting(Box<Meeting>),
    Meetings(Vec<Meeting>),
    Recordings(Vec<Recording>),
    Joined(Box<Joined>),
}

impl Response {
    pub fn success(body: Body) -> Response {
        Response {
            returncode: ReturnCode::Success,
            message_key: None,
            message: None,
            errors: Vec::new(),
            body,
        }
    }

    /// A FAILED answer with `messageKey` and `message`.
    pub fn failed(message: Message) -> Response {
        Response::failed_with(message.key, message.text)
    }

    pub fn failed_with(key: impl Into<String>, text: impl Into<String>) -> Response {
        Response {
            returncode: ReturnCode::Failed,
            message_key: Some(key.into()),
            message: Some(text.into()),
            errors: Vec::new(),
            body: Body::Fields(Vec::new()),
        }
    }

    /// A SUCCESS answer made of simple `<name>value</name>` fields.
    pub fn fields(fields: &[(&str, &str)]) -> Response {
        let children = fields.iter().map(|(k, v)| Element::text(*k, *v)).collect();
        Response::success(Body::Fields(children))
    }

    /// Builder: sets messageKey and message.
    pub fn with_message(mut self, message: Message) -> Response {
        self.message_key = Some(message.key.to_owned());
        self.message = Some(message.text.to_owned());
        self
    }

    pub fn is_success(&self) -> bool {
        self.returncode == ReturnCode::Success
    }

    /// The messageKey, or the first legacy error's key.
    pub fn key(&self) -> Option<&str> {
        self.message_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .or_else(|| self.errors.first().map(|(k, _)| k.as_str()))
    }

    /// The message, or the first legacy error's message.
    pub fn text(&self) -> Option<&str> {
        self.message
            .as_deref()
            .filter(|m| !m.is_empty())
            .or_else(|| self.errors.first().map(|(_, m)| m.as_str()))
    }

    /// A field of a [`Body::Fields`] answer, e.g. `running` or `version`.
    pub fn field(&self, name: &str) -> Option<&str> {
        match &self.body {
            Body::Fields(fields) => fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.text.as_str()),
            _ => None,
        }
    }

    /// Parses a BBB XML answer.
    pub fn from_xml(xml: &str) -> Result<Response, XmlError> {
        Response::from_element(&Element::parse(xml)?)
    }

    pub fn from_element(root: &Element) -> Result<Response, XmlError> {
        if root.name != "response" {
            return Err(XmlError::UnexpectedRoot {
                expected: "response".into(),
                found: root.name.clone(),
            });
        }
        let mut r = FieldReader::new(root);
        let returncode = match r.string("returncode").trim() {
            "SUCCESS" => ReturnCode::Success,
            "FAILED" => ReturnCode::Failed,
            other => {
                return Err(XmlError::InvalidValue {
                    element: "returncode".into(),
                    value: other.into(),
                })
            }
        };
        let message_key = r.opt_string("messageKey");
        let message = r.opt_string("message");
        let errors = r
            .take("errors")
            .map(|list| {
                list.children
                    .iter()
                    .map(|e| {
                        let key = e.child_text("key").or(e.attr("key")).unwrap_or_default();
                        let text = e.child_text("message").or(e.attr("message"));
                        (key.to_owned(), text.unwrap_or_default().to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let has = |name: &str| root.child(name).is_some();
        let body = if has("meetings") {
            let list = r.take("meetings").map(|m| &m.children[..]).unwrap_or(&[]);
            let meetings = list
                .iter()
                .map(Meeting::from_element)
                .collect::<Result<_, _>>()?;
            Body::Meetings(meetings)
        } else if has("recordings") {
            let list = r.take("recordings").map(|m| &m.children[..]).unwrap_or(&[]);
            let recordings = list
                .iter()
                .map(Recording::from_element)
                .collect::<Result<_, _>>()?;
            Body::Recordings(recordings)
        } else if has("meetingName") {
            let mut meeting = Meeting::read(&mut r)?;
            meeting.extra = r.rest();
            Body::Meeting(Box::new(meeting))
        } else if has("session_token") {
            let mut joined = Joined::read(&mut r);
            joined.extra = r.rest();
            Body::Joined(Box::new(joined))
        } else if has("internalMeetingID") && has("createTime") {
            let mut created = Created::read(&mut r)?;
            created.extra = r.rest();
            Body::Created(Box::new(created))
        } else {
            Body::Fields(r.rest())
        };
        Ok(Response {
            returncode,
            message_key,
            message,
            errors,
            body,
        })
    }

    /// The `<response>` element, children in bbb-web's order.
    pub fn to_element(&self) -> Element {
        let code = match self.returncode {
            ReturnCode::Success => "SUCCESS",
            ReturnCode::Failed => "FAILED",
        };
        let mut e = Element::new("response").with_text("returncode", code);
        if !self.errors.is_empty() {
            let mut list = Element::new("errors");
            for (key, text) in &self.errors {
                list.push(
                    Element::new("error")
                        .with_text("key", key)
                        .with_text("message", text),
                );
            }
            e.push(list);
        }
        match &self.body {
            Body::Fields(fields) => {
                e.children.extend(fields.iter().cloned());
                self.push_message(&mut e);
            }
            Body::Joined(joined) => {
                self.push_message(&mut e);
                e = joined.write(e);
            }
            Body::Created(created) => {
                e = created.write(e);
                // create always carries both, empty on a plain success.
                e.push(Element::text(
                    "messageKey",
                    self.message_key.clone().unwrap_or_default(),
                ));
                e.push(Element::text(
                    "message",
                    self.message.clone().unwrap_or_default(),
                ));
            }
            Body::Meeting(meeting) => {
                e = meeting.write_head(e);
                self.push_message(&mut e);
                meeting.write_tail(&mut e);
            }
            Body::Meetings(meetings) => {
                let mut list = Element::new("meetings");
                list.children = meetings.iter().map(Meeting::to_element).collect();
                e.push(list);
                self.push_message(&mut e);
            }
            Body::Recordings(recordings) => {
                let mut list = Element::new("recordings");
                list.children = recordings.iter().map(Recording::to_element).collect();
                e.push(list);
                self.push_message(&mut e);
            }
        }
        e
    }

    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }

    fn push_message(&self, e: &mut Element) {
        if let Some(key) = &self.message_key {
            e.push(Element::text("messageKey", key.clone()));
        }
        if let Some(text) = &self.message {
            e.push(Element::text("message", text.clone()));
        }
    }
}

#[cfg(test)]
mod tests;
