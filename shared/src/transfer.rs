//! How recordings travel (see ARCHITECTURE.md, "Recordings"): the agent ↔ balancer calls
//! (recorder keys, archive upload, settlement), the recorder ↔ balancer feed, the one-time
//! playback tokens of protected recordings and the signed recording-ready callback.
//!
//! Agents sign these calls with their node key like reports ([`crate::report::sign`]), over
//! [`agent_request`]: method, path and the body's sha256, so a multi-GB upload is signed
//! without holding it. Recorders sign with their integration's secret the way BBB clients do
//! (`checksum` = sha256 of call name + query + secret), with the call names below.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// `GET {AGENT_KEYS_PATH}/{fingerprint}`: the PEM of a recording server's public key.
pub const AGENT_KEYS_PATH: &str = "/conflux/agent/recorder-keys";
/// `PUT .../{recordID}` uploads an archive; `GET` lists the node's settled archives (the
/// recorder has them or they were deleted), `DELETE .../{recordID}` says the node dropped one.
pub const AGENT_ARCHIVES_PATH: &str = "/conflux/agent/archives";
/// The uploaded archive's sha256 (hex), covered by the signature.
pub const ARCHIVE_SHA256_HEADER: &str = "x-conflux-archive-sha256";
/// The recording's `metadata.xml` (base64), so the balancer can list it before it is processed.
pub const METADATA_HEADER: &str = "x-conflux-metadata";

/// Metadata the balancer adds to the create of a meeting recorded for an institution.
pub const META_INSTITUTION: &str = "conflux-institution";
/// The recording server's key fingerprint, which the agent fetches from the balancer.
pub const META_RECORDER: &str = "conflux-recorder";
/// Metadata keys reserved for the balancer (refused from clients, hidden from listings).
pub const RESERVED_META_PREFIX: &str = "conflux-";
/// The metadata naming the front-end's recording-ready URL (Scalelite's order).
pub const READY_URL_KEYS: [&str; 3] = [
    "meta_bn-recording-ready-url",
    "meta_bbb-recording-ready-url",
    "meta_canvas-recording-ready-url",
];

/// Recorder calls: the feed of archives and changes since a position.
/// The balancer's answer to an agent's `GET` of [`AGENT_ARCHIVES_PATH`]: the record ids whose
/// archives reached their recorder, so the node may delete its copies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub settled: Vec<String>,
}

pub const RECORDER_FEED_PATH: &str = "/conflux/recorder/feed";
pub const RECORDER_FEED_CALL: &str = "recorderFeed";
/// `GET {RECORDER_ARCHIVES_PATH}/{recordID}` (Range allowed), `POST .../{recordID}/done` with
/// the processed `<recording>` element, `POST .../{recordID}/failed` with the reason.
pub const RECORDER_ARCHIVES_PATH: &str = "/conflux/recorder/archives";
pub const RECORDER_ARCHIVE_CALL: &str = "recorderArchive";
pub const RECORDER_DONE_CALL: &str = "recorderDone";
pub const RECORDER_FAILED_CALL: &str = "recorderFailed";

/// The sha256 (hex) of nothing: what GET and DELETE calls sign as their body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The bytes an agent signs for a recording call.
pub fn agent_request(method: &str, path: &str, content_sha256: &str) -> Vec<u8> {
    format!("{method} {path}\n{content_sha256}").into_bytes()
}

/// One page of a recorder's feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feed {
    pub entries: Vec<FeedEntry>,
    /// The position to ask from next time.
    pub next: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub seq: i64,
    pub record_id: String,
    pub change: Change,
}

/// What happened to a recording, for its recording server to apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// An encrypted archive is ready to download (ciphertext size and sha256).
    Archive {
        meeting_id: String,
        size: u64,
        sha256: String,
        published: bool,
        protected: bool,
    },
    Publish {
        published: bool,
    },
    Protect {
        protected: bool,
    },
    /// Metadata set (non-empty value) or removed (empty value).
    Update {
        meta: Vec<(String, String)>,
    },
    Delete,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, parts: &[&str]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac
}

/// The tag in the balancer's meeting-ended callback URL (which BBB calls unsigned): binds the
/// URL to `meeting_id` under the integration's `secret`.
pub fn meeting_tag(secret: &str, meeting_id: &str) -> String {
    let tag = mac(secret, &["ended", meeting_id]).finalize().into_bytes();
    hex::encode(&tag[..16])
}

/// Whether `tag` is [`meeting_tag`] of `meeting_id` under `secret`.
pub fn verify_meeting_tag(secret: &str, meeting_id: &str, tag: &str) -> bool {
    meeting_tag(secret, meeting_id)
        .as_bytes()
        .ct_eq(tag.as_bytes())
        .into()
}

/// A one-time playback token for `format` of recording `record_id`, valid until `expires`
/// (unix seconds): `EXPIRES.NONCE.MAC`, MAC keyed with the integration's secret.
pub fn playback_token(secret: &str, record_id: &str, format: &str, expires: i64) -> String {
    let nonce = hex::encode(rand_bytes());
    let expires = expires.to_string();
    let tag = mac(secret, &["play", record_id, format, &expires, &nonce]).finalize();
    format!("{expires}.{nonce}.{}", hex::encode(tag.into_bytes()))
}

/// The nonce of a valid, unexpired token (the recorder then consumes it once).
pub fn verify_playback_token(
    secret: &str,
    record_id: &str,
    format: &str,
    token: &str,
    now: i64,
) -> Option<String> {
    let mut parts = token.splitn(3, '.');
    let (expires, nonce, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let tag = hex::decode(tag).ok()?;
    if expires.parse::<i64>().ok()? < now {
        return None;
    }
    mac(secret, &["play", record_id, format, expires, nonce])
        .verify_slice(&tag)
        .ok()?;
    Some(nonce.to_owned())
}

/// The value of the cookie that lets a browser keep watching a protected recording.
pub fn playback_cookie(secret: &str, record_id: &str, format: &str, expires: i64) -> String {
    let expires = expires.to_string();
    let tag = mac(secret, &["cookie", record_id, format, &expires]).finalize();
    format!("{expires}.{}", hex::encode(tag.into_bytes()))
}

/// Whether `value` is a valid, unexpired [`playback_cookie`].
pub fn verify_playback_cookie(
    secret: &str,
    record_id: &str,
    format: &str,
    value: &str,
    now: i64,
) -> bool {
    let Some((expires, tag)) = value.split_once('.') else {
        return false;
    };
    let Ok(tag) = hex::decode(tag) else {
        return false;
    };
    if expires.parse::<i64>().map_or(true, |e| e < now) {
        return false;
    }
    let expected = mac(secret, &["cookie", record_id, format, expires]).finalize();
    expected.into_bytes().ct_eq(&tag[..]).into()
}

fn rand_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rsa::rand_core::RngCore::fill_bytes(&mut rsa::rand_core::OsRng, &mut bytes);
    bytes
}

/// The HMAC algorithms of the JSON Web Tokens BBB signs its callbacks with: HS256 for the
/// recording-ready callback (`signed_parameters`), HS512 for the analytics callback's bearer
/// token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlg {
    Hs256,
    Hs512,
}

impl JwtAlg {
    fn name(self) -> &'static str {
        match self {
            JwtAlg::Hs256 => "HS256",
            JwtAlg::Hs512 => "HS512",
        }
    }

    fn sign(self, secret: &str, input: &[u8]) -> Vec<u8> {
        fn tag<M: Mac + hmac::digest::KeyInit>(secret: &str, input: &[u8]) -> Vec<u8> {
            let mut mac = <M as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            JwtAlg::Hs256 => tag::<Hmac<Sha256>>(secret, input),
            JwtAlg::Hs512 => tag::<Hmac<sha2::Sha512>>(secret, input),
        }
    }
}

/// A JSON Web Token of `claims` signed with `secret`.
pub fn jwt(alg: JwtAlg, secret: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{}","typ":"JWT"}}"#, alg.name()));
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(alg.sign(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// The claims of a token signed with `secret` by HS256 or HS512 (as its header says), if the
/// signature holds and its `exp`, when it has one, is not before `now` (seconds).
pub fn jwt_claims(secret: &str, token: &str, now: i64) -> Option<serde_json::Value> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let alg = match header["alg"].as_str()? {
        "HS256" => JwtAlg::Hs256,
        "HS512" => JwtAlg::Hs512,
        _ => return None,
    };
    let expected = alg.sign(secret, signing_input.as_bytes());
    let given = URL_SAFE_NO_PAD.decode(signature).ok()?;
    if !bool::from(expected.ct_eq(&given)) {
        return None;
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    match claims.get("exp") {
        None => Some(claims),
        Some(exp) => (exp.as_i64()? >= now).then_some(claims),
    }
}

/// Base64 (standard alphabet) for the metadata header.
pub fn encode_metadata(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml)
}

pub fn decode_metadata(header: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether `id` is safe as a recording id in paths and file names (BBB's are
/// `<sha1>-<ms>`; anything of letters, digits, `-`, `_` and `.` up to 128, not starting with a
/// dot, is accepted).
pub fn is_safe_record_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playback_tokens_bind_recording_format_and_time() {
        let token = playback_token("s3cret", "r1", "presentation", 2_000);
        assert!(verify_playback_token("s3cret", "r1", "presentation", &token, 1_000).is_some());
        assert!(verify_playback_token("s3cret", "r1", "presentation", &token, 2_001).is_none());
        assert!(verify_playback_token("other", "r1", "presentation", &token, 1_000).is_none());
        assert!(verify_playback_token("s3cret", "r2", "presentation", &token, 1_000).is_none());
        assert!(verify_playback_token("s3cret", "r1", "video", &token, 1_000).is_none());
        let forged = token.replacen("2000", "9000", 1);
        assert!(verify_playback_token("s3cret", "r1", "presentation", &forged, 1_000).is_none());
        assert_ne!(token, playback_token("s3cret", "r1", "presentation", 2_000));

        let cookie = playback_cookie("s3cret", "r1", "presentation", 2_000);
        let valid = |rid, value: &str, now| {
            verify_playback_cookie("s3cret", rid, "presentation", value, now)
        };
        assert!(valid("r1", &cookie, 1_000));
        assert!(!valid("r1", &cookie, 3_000));
        assert!(!valid("r2", &cookie, 1_000));
        assert!(!valid("r1", "x.y", 1_000));
    }

    #[test]
    fn jwt_matches_known_tokens_and_checks_expiry() {
        // jwt.io's example: {"sub":"1234567890","name":"John Doe","iat":1516239022}, key
        // "your-256-bit-secret"; serde_json orders keys, so compare by verification.
        let known = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let claims = jwt_claims("your-256-bit-secret", known, 0).unwrap();
        assert_eq!(claims["name"], "John Doe");
        assert!(jwt_claims("wrong", known, 0).is_none());
        let ours = jwt(
            JwtAlg::Hs256,
            "k",
            &serde_json::json!({"meeting_id": "m", "record_id": "r"}),
        );
        assert_eq!(jwt_claims("k", &ours, 0).unwrap()["record_id"], "r");
        let hs512 = jwt(JwtAlg::Hs512, "k", &serde_json::json!({"exp": 100}));
        assert!(hs512.starts_with("eyJhbGciOiJIUzUxMiIs"), "{hs512}");
        assert!(jwt_claims("k", &hs512, 100).is_some());
        assert!(jwt_claims("k", &hs512, 101).is_none(), "expired");
        assert!(jwt_claims("x", &hs512, 0).is_none());
        // A token claiming another algorithm (or none) is refused.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert!(jwt_claims("k", &none, 0).is_none());
    }

    #[test]
    fn record_ids_are_path_safe() {
        assert!(is_safe_record_id(
            "183f0bf3a0982a127bdb8161e0c44eb696b3e75c-1700000000000"
        ));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "a\\b"] {
            assert!(!is_safe_record_id(bad), "{bad}");
        }
    }
}
