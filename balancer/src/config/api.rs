//! `[api]`: the BBB API's checksums, Scalelite's parameter rules and switches, and the
//! limits on failed checksums.

use std::collections::BTreeMap;

use conflux_shared::{Algorithm, AlgorithmSet};
use serde::Deserialize;

use super::{invalid, positive, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawApi {
    /// Accepted client checksums (default all four).
    pub checksum_algorithms: Option<String>,
    pub get_meetings_disabled: bool,
    pub get_recordings_filtered: bool,
    pub recording_disabled: bool,
    /// Minutes; 0 = no limit.
    pub max_meeting_duration: u64,
    pub create_exclude_params: Vec<String>,
    pub join_exclude_params: Vec<String>,
    pub default_create_params: BTreeMap<String, String>,
    pub override_create_params: BTreeMap<String, String>,
    pub default_join_params: BTreeMap<String, String>,
    pub override_join_params: BTreeMap<String, String>,
    pub build_number: String,
    /// Where a browser goes when the balancer refuses a join and neither the join's
    /// `errorRedirectUrl` nor the meeting's `logoutURL` says (empty: the error as XML).
    pub join_error_url: String,
    /// The balancer's public address as nodes reach it (`https://lb.example.org`; a bare host
    /// means https). When set, callbacks BBB signs with the node's secret (analytics,
    /// recording-ready) and the meeting-ended callback are relayed through the balancer and
    /// re-signed with the integration's secret. Scalelite's URL_HOST.
    pub public_url: String,
    /// Algorithm used to sign calls to nodes: by default the strongest of
    /// `checksum_algorithms` when that is set, else sha256 (Scalelite's rule).
    pub node_checksum_algorithm: Option<String>,
    /// Failed checksums one client address (an IPv6 /64) may make at once ...
    pub client_failure_burst: f64,
    /// ... and how many more it may make per hour after that.
    pub client_failures_per_hour: f64,
    /// The same for all clients of one integration (or of none named): once spent, clients
    /// with recent failures are refused.
    pub scope_failure_burst: f64,
    pub scope_failures_per_hour: f64,
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            checksum_algorithms: None,
            get_meetings_disabled: false,
            get_recordings_filtered: false,
            recording_disabled: false,
            max_meeting_duration: 0,
            create_exclude_params: Vec::new(),
            join_exclude_params: Vec::new(),
            default_create_params: BTreeMap::new(),
            override_create_params: BTreeMap::new(),
            default_join_params: BTreeMap::new(),
            override_join_params: BTreeMap::new(),
            build_number: String::new(),
            join_error_url: String::new(),
            public_url: String::new(),
            node_checksum_algorithm: None,
            client_failure_burst: 20.0,
            client_failures_per_hour: 30.0,
            scope_failure_burst: 100.0,
            scope_failures_per_hour: 120.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub algorithms: AlgorithmSet,
    pub node_algorithm: conflux_shared::Algorithm,
    pub get_meetings_disabled: bool,
    pub get_recordings_filtered: bool,
    pub recording_disabled: bool,
    pub max_meeting_duration: u64,
    pub create_exclude_params: Vec<String>,
    pub join_exclude_params: Vec<String>,
    pub default_create_params: Vec<(String, String)>,
    pub override_create_params: Vec<(String, String)>,
    pub default_join_params: Vec<(String, String)>,
    pub override_join_params: Vec<(String, String)>,
    pub build_number: String,
    pub join_error_url: Option<String>,
    /// Without a trailing slash.
    pub public_url: Option<String>,
    pub failures: crate::failures::FailureLimits,
}

impl RawApi {
    pub(super) fn validate(self) -> Result<ApiConfig, ConfigError> {
        let algorithms: AlgorithmSet = match &self.checksum_algorithms {
            Some(list) => list
                .parse()
                .map_err(|e| invalid("api.checksum_algorithms", format!("{e}")))?,
            None => AlgorithmSet::ALL,
        };
        if algorithms == AlgorithmSet::empty() {
            return Err(invalid(
                "api.checksum_algorithms",
                "no algorithm enabled".into(),
            ));
        }
        let node_algorithm = match (&self.node_checksum_algorithm, &self.checksum_algorithms) {
            (Some(name), _) => name
                .parse()
                .map_err(|e| invalid("api.node_checksum_algorithm", format!("{e}")))?,
            (None, Some(_)) => algorithms.iter().last().unwrap_or(Algorithm::Sha256),
            (None, None) => Algorithm::Sha256,
        };
        let budget = |name: &str, burst: f64, per_hour: f64| {
            Ok::<_, ConfigError>(crate::failures::Budget {
                burst: positive(&format!("api.{name}_failure_burst"), burst)?,
                per_hour: positive(&format!("api.{name}_failures_per_hour"), per_hour)?,
            })
        };
        let failures = crate::failures::FailureLimits {
            client: budget(
                "client",
                self.client_failure_burst,
                self.client_failures_per_hour,
            )?,
            scope: budget(
                "scope",
                self.scope_failure_burst,
                self.scope_failures_per_hour,
            )?,
        };
        let join_error_url = match self.join_error_url.trim() {
            "" => None,
            url if conflux_shared::signed_url::is_web_url(url) => Some(url.to_owned()),
            url => {
                return Err(invalid(
                    "api.join_error_url",
                    format!("{url:?} is not an http(s) URL"),
                ))
            }
        };
        let public_url = match self.public_url.trim().trim_end_matches('/') {
            "" => None,
            url if conflux_shared::signed_url::is_web_url(url) => Some(url.to_owned()),
            host if !host.contains(['/', '?', '#', ' ', '@']) => Some(format!("https://{host}")),
            url => {
                return Err(invalid(
                    "api.public_url",
                    format!("{url:?} is neither an http(s) URL nor a host name"),
                ))
            }
        };
        Ok(ApiConfig {
            algorithms,
            node_algorithm,
            get_meetings_disabled: self.get_meetings_disabled,
            get_recordings_filtered: self.get_recordings_filtered,
            recording_disabled: self.recording_disabled,
            max_meeting_duration: self.max_meeting_duration,
            create_exclude_params: self.create_exclude_params,
            join_exclude_params: self.join_exclude_params,
            default_create_params: self.default_create_params.into_iter().collect(),
            override_create_params: self.override_create_params.into_iter().collect(),
            default_join_params: self.default_join_params.into_iter().collect(),
            override_join_params: self.override_join_params.into_iter().collect(),
            build_number: self.build_number,
            join_error_url,
            public_url,
            failures,
        })
    }
}
