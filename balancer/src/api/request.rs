//! The request as the handlers see it, and the shared first steps of the pipeline: the client
//! address (X-Forwarded-For from trusted proxies), Content-Type rules, and authentication (the
//! integration whose secret signed the call).

use std::net::IpAddr;
use std::sync::Arc;

use conflux_shared::response::messages;
use conflux_shared::{Query, SignedQuery};
use warp::http::Method;
use warp::hyper::body::Bytes;

use super::error::ApiError;
use crate::failures::{Api, Limits, Verdict};
use crate::state::AppState;
use conflux_store::Integration;

/// One BBB API request.
pub struct ApiRequest {
    pub call: String,
    pub method: Method,
    /// URL parameters (with the raw URL query as received), then form-body parameters.
    pub params: Query,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The peer, or the client a trusted proxy names: what the failure limits count.
    pub client_ip: Option<IpAddr>,
    /// The end user as the caller names it (the left-most X-Forwarded-For address): where an
    /// integration that passes its users' addresses (Mconf) wants the meeting placed.
    pub user_ip: Option<IpAddr>,
    /// The integration prefix from the path or Host header, if any.
    pub prefix: Option<String>,
    /// The caller takes a gzipped answer (`Accept-Encoding`).
    pub gzip: bool,
}

/// Whether an `Accept-Encoding` header accepts gzip (RFC 9110 12.5.3): `gzip` or `x-gzip` with
/// a weight above zero, or else `*` with one.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    use crate::accept::weight;
    accept_encoding.is_some_and(|value| {
        weight(value, &["gzip", "x-gzip"])
            .or_else(|| weight(value, &["*"]))
            .is_some_and(|q| q > 0.0)
    })
}

impl ApiRequest {
    /// The raw URL query as received.
    pub fn raw_query(&self) -> &str {
        self.params.raw()
    }

    /// The query without its checksum: what gets re-signed for the node. A form body's fields
    /// are part of it (they travel in the query, not the body: [`ApiRequest::node_body`]).
    pub fn unsigned_query(&self) -> String {
        self.params.all_raw_without(&["checksum"])
    }

    /// Whether the body is a form whose fields were read as parameters.
    fn has_form_body(&self) -> bool {
        !self.body.is_empty()
            && matches!(
                self.content_type.as_deref(),
                Some("application/x-www-form-urlencoded" | "multipart/form-data")
            )
    }

    /// The body the node gets with its Content-Type: none for a form body (Scalelite turns
    /// such posts into a GET, so the client's checksum field never reaches the node), any
    /// other body (XML presentations) as it came.
    pub fn node_body(&self) -> Option<(Option<&str>, Bytes)> {
        (!self.body.is_empty() && !self.has_form_body())
            .then(|| (self.content_type.as_deref(), self.body.clone()))
    }

    /// The raw URL query minus the named parameters, other bytes untouched.
    pub fn params_raw_without(&self, names: &[&str]) -> String {
        self.params.raw_without(names)
    }

    pub fn meeting_id(&self) -> Result<String, ApiError> {
        self.params
            .get_trimmed("meetingID")
            .ok_or(ApiError::Bbb(messages::MISSING_MEETING_ID))
    }
}

/// The integration that signed `req`, or `checksumError`.
pub fn authenticate(state: &AppState, req: &ApiRequest) -> Result<Arc<Integration>, ApiError> {
    let signed = SignedQuery::parse(&signed_text(req), state.config.api.algorithms)
        .map_err(|_| ApiError::Bbb(messages::CHECKSUM_ERROR))?;
    let prefix = req.prefix.as_deref();
    let integration = limited(state, Api::Bbb, req.client_ip, prefix, || {
        state.integration_for(&req.call, &signed, prefix)
    })
    .map_err(|refusal| match refusal {
        Refusal::Limited => ApiError::Bbb(messages::TOO_MANY_FAILURES),
        Refusal::Failed => ApiError::Bbb(messages::CHECKSUM_ERROR),
    })?;
    if !integration.api_enabled {
        return Err(ApiError::PermissionDenied(
            "This application is not currently allowed to access this API.",
        ));
    }
    Ok(integration)
}

/// The URL query with the checksum it is checked against: its own, else (Scalelite) the one a
/// form body carries. Only the URL query is hashed either way.
fn signed_text(req: &ApiRequest) -> std::borrow::Cow<'_, str> {
    let raw = req.raw_query();
    let in_url = req.params.url_params().iter().any(|p| p.name == "checksum");
    match req.params.get("checksum") {
        Some(checksum) if !in_url => {
            let joiner = if raw.is_empty() { "" } else { "&" };
            format!("{raw}{joiner}checksum={checksum}").into()
        }
        _ => raw.into(),
    }
}

/// Refuses a body whose Content-Type the call does not take (bbb-web 2.7.8+ rules).
pub fn check_content_type(req: &ApiRequest) -> Result<(), ApiError> {
    if req.body.is_empty() {
        return Ok(());
    }
    let allowed = conflux_shared::body::accepted_content_types(&req.call);
    match req.content_type.as_deref() {
        Some(m) if allowed.contains(&m) => Ok(()),
        _ => Err(ApiError::Bbb(messages::UNSUPPORTED_CONTENT_TYPE)),
    }
}

/// The left-most address of an X-Forwarded-For header: the user, as the first hop names it.
pub fn named_user(forwarded_for: Option<&str>) -> Option<IpAddr> {
    forwarded_for?
        .split(',')
        .find_map(|hop| hop.trim().parse().ok())
}

/// Runs `check` (a checksum verification from `client`, naming the integration with `prefix`)
/// under the failure limits: refused unchecked when over them, counted, logged and measured
/// when it fails.
pub(crate) fn limited<T>(
    state: &AppState,
    api: Api,
    client: Option<IpAddr>,
    prefix: Option<&str>,
    check: impl FnOnce() -> Option<T>,
) -> Result<T, Refusal> {
    let limiter = &state.failures.checksum;
    let scope = || prefix.and_then(|p| state.integrations.load().by_prefix(p).map(|i| i.id));
    if limiter.verdict(client, scope) == Verdict::Refuse {
        state.metrics.checksum_refused(api);
        return Err(Refusal::Limited);
    }
    match check() {
        Some(found) => Ok(found),
        None => {
            state.metrics.checksum_failed(api);
            let failures = &state.failures;
            let (emptied, _) = failures.failed(&state.store, Limits::Checksum, client, scope());
            if emptied {
                tracing::warn!(
                    client = %client.map_or_else(String::new, |c| c.to_string()),
                    api = api.as_str(),
                    "Too many failed checksums: the client is refused until its budget refills."
                );
            }
            Err(Refusal::Failed)
        }
    }
}

/// Why [`limited`] gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Over the failure limits; not checked.
    Limited,
    /// Checked and wrong.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_is_accepted_as_rfc_9110_weighs_it() {
        for yes in [
            "gzip",
            "GZIP",
            "gzip;q=1.0,deflate;q=0.6,identity;q=0.3", // Ruby's Net::HTTP
            "deflate, gzip",
            "x-gzip",
            "*",
            "br;q=1, *;q=0.5",
            "gzip; q=0.001",
        ] {
            assert!(accepts_gzip(Some(yes)), "{yes}");
        }
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "gzip;q=0.000",
            "gzip;q=0, *",
            "*;q=0",
            "gzip;q=nonsense",
            "gzipped",
        ] {
            assert!(!accepts_gzip(Some(no)), "{no}");
        }
        assert!(!accepts_gzip(None));
    }
}
