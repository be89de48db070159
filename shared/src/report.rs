//! The agent protocol: what a node's agent sends the balancer, and how it is signed.
//!
//! Enrolment (`POST /conflux/agent/enrol`, JSON [`Enrolment`]) carries the operator's enrolment
//! token and answers [`Enrolled`] with the node's own key. Every report after that
//! (`POST /conflux/agent/report`, JSON [`Report`]) carries three headers: [`NODE_HEADER`] (the
//! node id), [`TIMESTAMP_HEADER`] (ms since the epoch) and [`SIGNATURE_HEADER`], the hex
//! HMAC-SHA256 with the node key over `"{node}\n{timestamp}\n"` followed by the body. The
//! balancer refuses a timestamp more than [`MAX_SKEW_MS`] from its clock or not newer than
//! the node's last accepted report, so a captured report cannot be replayed.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const ENROL_PATH: &str = "/conflux/agent/enrol";
pub const REPORT_PATH: &str = "/conflux/agent/report";
pub const NODE_HEADER: &str = "x-conflux-node";
pub const TIMESTAMP_HEADER: &str = "x-conflux-timestamp";
pub const SIGNATURE_HEADER: &str = "x-conflux-signature";
/// How far a report's timestamp may be from the balancer's clock.
pub const MAX_SKEW_MS: i64 = 60_000;

/// An agent's first contact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolment {
    pub token: String,
    /// The node's name in the pool (defaults to its host name on the agent side).
    pub name: String,
    /// The node's BBB API base, as the balancer should call it.
    pub url: String,
    /// The node's BBB secret.
    pub secret: String,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
}

/// The balancer's answer to an enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolled {
    pub node: i64,
    pub name: String,
    /// Hex key for signing reports; the agent keeps it in its state file.
    pub key: String,
}

/// One report: the node's resources and its BBB counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// CPU use over the last interval, % of all cores.
    pub cpu_percent: f64,
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    pub memory_used: u64,
    pub memory_total: u64,
    pub disks: Vec<Disk>,
    /// Bytes per second over the last interval, all interfaces but loopback.
    pub net_in: f64,
    pub net_out: f64,
    /// The local BBB API's counts, or why they could not be read.
    pub bbb: Result<BbbCounts, String>,
    /// The agent's report interval, so the balancer knows when a report is late.
    pub interval_secs: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub mount: String,
    pub used: u64,
    pub total: u64,
}

impl Disk {
    pub fn percent(&self) -> f64 {
        percent(self.used, self.total)
    }
}

/// What the node's own getMeetings says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BbbCounts {
    pub meetings: u32,
    pub users: u32,
    /// Users with a microphone (voiceParticipantCount).
    pub voice: u32,
    /// Listen-only users (listenerCount).
    pub listeners: u32,
    pub video: u32,
    /// The API version the node's index answers.
    pub version: String,
}

impl Report {
    pub fn memory_percent(&self) -> f64 {
        percent(self.memory_used, self.memory_total)
    }

    /// The fullest disk.
    pub fn fullest_disk(&self) -> Option<&Disk> {
        self.disks
            .iter()
            .max_by(|a, b| a.percent().total_cmp(&b.percent()))
    }
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

/// The hex signature of a report `body` sent by `node` at `timestamp_ms`.
pub fn sign(key: &[u8], node: i64, timestamp_ms: i64, body: &[u8]) -> String {
    hex::encode(mac(key, node, timestamp_ms, body).finalize().into_bytes())
}

/// Whether `signature` (hex) is the right one; constant-time.
pub fn verify(key: &[u8], node: i64, timestamp_ms: i64, body: &[u8], signature: &str) -> bool {
    let Ok(bytes) = hex::decode(signature.trim()) else {
        return false;
    };
    mac(key, node, timestamp_ms, body)
        .verify_slice(&bytes)
        .is_ok()
}

fn mac(key: &[u8], node: i64, timestamp_ms: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(format!("{node}\n{timestamp_ms}\n").as_bytes());
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_node_time_and_body() {
        let key = b"node-key";
        let sig = sign(key, 7, 1000, b"{}");
        assert!(verify(key, 7, 1000, b"{}", &sig));
        assert!(verify(key, 7, 1000, b"{}", &sig.to_uppercase()));
        assert!(!verify(key, 8, 1000, b"{}", &sig), "another node");
        assert!(!verify(key, 7, 1001, b"{}", &sig), "another time");
        assert!(!verify(key, 7, 1000, b"{ }", &sig), "another body");
        assert!(!verify(b"other", 7, 1000, b"{}", &sig), "another key");
        assert!(!verify(key, 7, 1000, b"{}", "zz"), "not hex");
        assert!(!verify(key, 7, 1000, b"{}", ""), "empty");
    }

    #[test]
    fn reports_round_trip_as_json() {
        let report = Report {
            cpu_percent: 12.5,
            load: [0.5, 0.4, 0.3],
            memory_used: 2,
            memory_total: 8,
            disks: vec![Disk {
                mount: "/".into(),
                used: 90,
                total: 100,
            }],
            net_in: 1e6,
            net_out: 2e6,
            bbb: Ok(BbbCounts {
                meetings: 1,
                users: 3,
                version: "2.7".into(),
                ..Default::default()
            }),
            interval_secs: 10.0,
        };
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
        assert_eq!(report.memory_percent(), 25.0);
        assert_eq!(report.fullest_disk().unwrap().percent(), 90.0);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn reports_of_any_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = serde_json::from_slice::<Report>(&body);
                let _ = serde_json::from_slice::<Enrolment>(&body);
            }

            #[test]
            fn reports_of_json_like_text_never_panic(text in "[{}\\[\\]\":,0-9a-z_.eE+-]{0,200}") {
                let _ = serde_json::from_str::<Report>(&text);
            }

            #[test]
            fn only_the_right_signature_verifies(
                key in proptest::collection::vec(any::<u8>(), 0..64),
                node in any::<i64>(),
                at in any::<i64>(),
                body in proptest::collection::vec(any::<u8>(), 0..256),
                forged in "[0-9a-fA-F]{0,70}|.{0,70}",
            ) {
                let signature = sign(&key, node, at, &body);
                prop_assert!(verify(&key, node, at, &body, &signature));
                prop_assert!(!verify(&key, node, at.wrapping_add(1), &body, &signature));
                if forged.to_ascii_lowercase() != signature {
                    prop_assert!(!verify(&key, node, at, &body, &forged));
                }
            }
        }
    }
}
