//! `[web]`: the operator's web pages: public or not, cookies, session length.

use std::time::Duration;

use serde::Deserialize;

use super::{seconds, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWeb {
    /// The dashboard and node pages are readable without logging in.
    pub public: bool,
    /// Session cookies carry `Secure` (turn off only for plain-HTTP set-ups other than loopback).
    pub secure_cookies: bool,
    pub session_hours: f64,
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            public: false,
            secure_cookies: true,
            session_hours: 12.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub public: bool,
    pub secure_cookies: bool,
    pub session: Duration,
}

impl RawWeb {
    pub(super) fn validate(self) -> Result<WebConfig, ConfigError> {
        Ok(WebConfig {
            public: self.public,
            secure_cookies: self.secure_cookies,
            session: seconds("web.session_hours", self.session_hours * 3600.0)?,
        })
    }
}
