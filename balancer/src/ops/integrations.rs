//! Operations on integrations, for every door: checking a recording server.

use conflux_store::integrations::Recorder;

use super::Invalid;

/// A recording server from its URL and PEM public key, checked (http(s) URL, RSA key of 3072
/// bits or more). Shared by the CLI and the admin pages.
pub fn recorder(url: &str, pem: &str) -> Result<Recorder, Invalid> {
    let url = url.trim().trim_end_matches('/');
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && url.split("://").nth(1).is_some_and(|r| !r.is_empty())
        && !url.contains(char::is_whitespace);
    if !valid {
        return Err(Invalid(format!(
            "the recording server URL {url:?} must be http(s)://HOST[...]"
        )));
    }
    let key =
        conflux_shared::crypto::RecorderKey::from_pem(pem).map_err(|e| Invalid(e.to_string()))?;
    Ok(Recorder {
        url: url.to_owned(),
        key: key.pem,
        fingerprint: key.fingerprint,
    })
}
