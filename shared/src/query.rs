//! Query strings that keep their order and their raw text.
//!
//! BBB checksums hash the query exactly as sent, so a [`Query`] keeps the raw string next to the
//! decoded pairs: a proxy can forward the raw text byte for byte while reading decoded values.
//! Decoding follows `application/x-www-form-urlencoded` (`+` is a space); invalid UTF-8 after
//! percent-decoding is an error, never a panic. This module does no I/O.

use std::borrow::Cow;

/// Why a query string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("parameter {0:?} is not valid UTF-8 once decoded")]
    InvalidUtf8(String),
    #[error("the query string is longer than {0} bytes")]
    TooLong(usize),
    #[error("the query string has more than {0} parameters")]
    TooMany(usize),
}

/// One `name=value` pair, raw and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub raw: String,
    pub name: String,
    pub value: String,
}

/// A parsed query string: the raw text plus its pairs in order (then any form-body pairs
/// appended by [`Query::extend_from`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    raw: String,
    params: Vec<Param>,
    /// How many of `params` come from `raw` (the rest from a form body).
    own: usize,
}

/// The longest query string accepted (bbb-web runs behind nginx, whose default header buffer
/// also caps request lines near this size).
pub const MAX_QUERY_LEN: usize = 64 * 1024;

/// The most parameters a query may carry (a create with every BBB parameter and many `meta_`
/// keys stays far below).
pub const MAX_PARAMS: usize = 1024;

impl Query {
    /// Parses `raw` (without the leading `?`). Empty pieces (`a=1&&b=2`, a leading `&`) are skipped
    /// but stay in the raw text. Names are trimmed, as bbb-web trims them.
    pub fn parse(raw: &str) -> Result<Query, QueryError> {
        if raw.len() > MAX_QUERY_LEN {
            return Err(QueryError::TooLong(MAX_QUERY_LEN));
        }
        let pieces = memchr::memchr_iter(b'&', raw.as_bytes()).count() + 1;
        if pieces > MAX_PARAMS && raw.split('&').filter(|p| !p.is_empty()).count() > MAX_PARAMS {
            return Err(QueryError::TooMany(MAX_PARAMS));
        }
        let mut params = Vec::with_capacity(pieces.min(MAX_PARAMS));
        for piece in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let invalid = |_| QueryError::InvalidUtf8(piece.to_owned());
            let name = decoded(name).map_err(invalid)?;
            let value = decoded(value).map_err(invalid)?;
            params.push(Param {
                raw: piece.to_owned(),
                name: name.trim().to_owned(),
                value: value.into_owned(),
            });
        }
        Ok(Query {
            raw: raw.to_owned(),
            own: params.len(),
            params,
        })
    }

    /// The query exactly as received.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The pairs of the raw query itself, without form-body pairs.
    pub fn url_params(&self) -> &[Param] {
        &self.params[..self.own]
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The first value of `name`, decoded.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// The first value of `name`, trimmed of blanks and control characters as bbb-web does
    /// (`ParamsUtil.sanitizeString`); `None` when absent or empty after trimming.
    pub fn get_trimmed(&self, name: &str) -> Option<String> {
        self.get(name).map(sanitize).filter(|v| !v.is_empty())
    }

    /// A comma list parameter (`recordID=a,b`), decoded, trimmed, without empty items.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
    }

    /// Pairs whose name starts with `prefix`, with the prefix removed (e.g. `meta_`).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.params
            .iter()
            .filter_map(move |p| Some((p.name.strip_prefix(prefix)?, p.value.as_str())))
    }

    /// Appends the pairs of `other` (a form body) to this query. The raw text is left unchanged:
    /// a body is never part of the checksum.
    pub fn extend_from(&mut self, other: Query) {
        self.params.extend(other.params);
    }

    /// The raw query without the pairs whose decoded name is in `names`, other pairs untouched
    /// (form-body pairs are not part of it).
    pub fn raw_without(&self, names: &[&str]) -> String {
        join_raw(self.url_params(), names)
    }

    /// [`Query::raw_without`] with the form-body pairs too: the query a node gets for a request
    /// whose form body is not passed on (Scalelite turns such posts into a GET).
    pub fn all_raw_without(&self, names: &[&str]) -> String {
        join_raw(self.params(), names)
    }
}

/// The raw pairs of `params` not named in `names`, joined by `&`.
fn join_raw(params: &[Param], names: &[&str]) -> String {
    let mut raw = String::new();
    for param in params.iter().filter(|p| !names.contains(&p.name.as_str())) {
        if !raw.is_empty() {
            raw.push('&');
        }
        raw.push_str(&param.raw);
    }
    raw
}

/// Removes control characters and surrounding blanks, as bbb-web does before validating a value.
pub fn sanitize(value: &str) -> String {
    if !value.chars().any(char::is_control) {
        return value.trim().to_owned();
    }
    value
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Decodes one form-urlencoded component: `+` is a space, `%XX` a byte; invalid escapes are kept
/// literally (as browsers do); the result must be UTF-8.
pub fn decode(component: &str) -> Result<String, std::str::Utf8Error> {
    decoded(component).map(Cow::into_owned)
}

/// [`decode`], borrowing `component` when it has nothing to decode.
fn decoded(component: &str) -> Result<Cow<'_, str>, std::str::Utf8Error> {
    if !component.contains(['+', '%']) {
        return Ok(Cow::Borrowed(component));
    }
    let plus_as_space = component.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|text| Cow::Owned(text.into_owned()))
}

/// Encodes one component the way Java's `URLEncoder` and PHP's `urlencode` do (space as `+`).
pub fn encode(component: &str) -> String {
    form_urlencoded::byte_serialize(component.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_order_raw_text_and_decodes() {
        let q = Query::parse("meetingID=a%26b%3Dc&fullName=Jos%C3%A9+%C3%91o%C3%B1o&&x&welcome=")
            .unwrap();
        assert_eq!(
            q.raw(),
            "meetingID=a%26b%3Dc&fullName=Jos%C3%A9+%C3%91o%C3%B1o&&x&welcome="
        );
        let names: Vec<_> = q.params().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["meetingID", "fullName", "x", "welcome"]);
        assert_eq!(q.get("meetingID"), Some("a&b=c"));
        assert_eq!(q.get("fullName"), Some("José Ñoño"));
        assert_eq!(q.get("welcome"), Some(""));
        assert_eq!(q.get_trimmed("welcome"), None);
        assert_eq!(q.params()[1].raw, "fullName=Jos%C3%A9+%C3%91o%C3%B1o");
    }

    #[test]
    fn trims_names_and_sanitizes_values() {
        let q = Query::parse("%20meetingID=%20%20r1%09&b=%00x").unwrap();
        assert_eq!(q.get("meetingID"), Some("  r1\t"));
        assert_eq!(q.get_trimmed("meetingID").as_deref(), Some("r1"));
        assert_eq!(q.get_trimmed("b").as_deref(), Some("x"));
    }

    #[test]
    fn refuses_invalid_utf8_and_huge_input() {
        assert!(matches!(
            Query::parse("name=%FF%FE"),
            Err(QueryError::InvalidUtf8(_))
        ));
        assert_eq!(
            Query::parse(&"a=1&".repeat(MAX_PARAMS + 1)),
            Err(QueryError::TooMany(MAX_PARAMS))
        );
        assert_eq!(
            Query::parse(&"a=1&".repeat(MAX_PARAMS)).map(|q| q.params().len()),
            Ok(MAX_PARAMS)
        );
        assert!(matches!(
            Query::parse(&"a".repeat(MAX_QUERY_LEN + 1)),
            Err(QueryError::TooLong(_))
        ));
        // Invalid escapes stay literal instead of failing.
        assert_eq!(Query::parse("a=%zz%4").unwrap().get("a"), Some("%zz%4"));
    }

    #[test]
    fn prefix_and_removal() {
        let q = Query::parse("meta_bbb-origin=moodle&name=x&meta_Foo=1&checksum=abc").unwrap();
        let meta: Vec<_> = q.with_prefix("meta_").collect();
        assert_eq!(meta, [("bbb-origin", "moodle"), ("Foo", "1")]);
        assert_eq!(
            q.raw_without(&["checksum", "name"]),
            "meta_bbb-origin=moodle&meta_Foo=1"
        );
        let mut with_form = q.clone();
        with_form.extend_from(Query::parse("welcome=hi").unwrap());
        assert_eq!(with_form.get("welcome"), Some("hi"));
        assert_eq!(
            with_form.raw_without(&["checksum"]),
            q.raw_without(&["checksum"])
        );
    }

    #[test]
    fn encode_matches_java_url_encoder() {
        assert_eq!(encode("Room Ä ~*"), "Room+%C3%84+%7E*");
        assert_eq!(decode(&encode("a&b=c +%")).unwrap(), "a&b=c +%");
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_keeps_raw(raw in ".{0,200}") {
            if let Ok(q) = Query::parse(&raw) {
                prop_assert_eq!(q.raw(), raw.as_str());
                prop_assert!(q.params().len() <= raw.len());
            }
        }

        #[test]
        fn encoded_pairs_round_trip(pairs in proptest::collection::vec(("[a-zA-Z_]{1,8}", ".{0,16}"), 0..8)) {
            let raw = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
            let q = Query::parse(&raw).unwrap();
            prop_assert_eq!(q.params().len(), pairs.len());
            for (p, (k, v)) in q.params().iter().zip(&pairs) {
                prop_assert_eq!(&p.name, k);
                prop_assert_eq!(&p.value, v);
            }
        }
    }
}
