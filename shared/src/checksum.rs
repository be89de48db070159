//! BBB request checksums: compute and verify `hex(H(call + query + secret))`.
//!
//! The hashed query is the raw query string exactly as received, with the `checksum` parameter
//! removed by the same literal substitutions bbb-web applies (never re-encoded). The algorithm is
//! chosen by the checksum's length; which algorithms are accepted is a deployment setting.
//! Comparison is case-insensitive on the hex digits and constant-time on the digest bytes.
//! This module does no I/O.

use std::fmt;
use std::str::FromStr;

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

/// A hash algorithm BBB accepts for checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// The set of algorithms a deployment accepts (bbb-web's `supportedChecksumAlgorithms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmSet(u8);

/// Why a checksum was refused. Every variant maps to BBB's `checksumError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    #[error("the request has no checksum parameter")]
    Missing,
    #[error("the request has more than one checksum parameter")]
    Duplicate,
    #[error("no algorithm matches a checksum of length {0}")]
    UnknownLength(usize),
    #[error("checksum algorithm {0} is not enabled")]
    Disabled(Algorithm),
    #[error("the checksum is not hexadecimal")]
    NotHex,
    #[error("the checksum does not match")]
    Mismatch,
    #[error("unknown checksum algorithm name {0:?}")]
    UnknownName(String),
}

/// A request's checksum, split from the query it signs. Parse once, then verify against as many
/// secrets as needed (the balancer tries each integration's secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    /// The raw query with the checksum parameter removed: what the client hashed.
    pub payload: String,
    pub algorithm: Algorithm,
    digest: Vec<u8>,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha384,
        Algorithm::Sha512,
    ];

    /// The algorithm whose hex digest has `len` characters.
    pub fn from_hex_len(len: usize) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.hex_len() == len)
    }

    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 40,
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The digest of the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            hasher.finalize().to_vec()
        }
        match self {
            Algorithm::Sha1 => run::<Sha1>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
            Algorithm::Sha384 => run::<Sha384>(parts),
            Algorithm::Sha512 => run::<Sha512>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = ChecksumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s || a.name().replace("sha", "sha-") == s)
            .ok_or(ChecksumError::UnknownName(s))
    }
}

impl AlgorithmSet {
    pub const ALL: AlgorithmSet = AlgorithmSet(0b1111);

    pub fn empty() -> AlgorithmSet {
        AlgorithmSet(0)
    }

    pub fn with(self, algorithm: Algorithm) -> AlgorithmSet {
        AlgorithmSet(self.0 | Self::bit(algorithm))
    }

    pub fn contains(self, algorithm: Algorithm) -> bool {
        self.0 & Self::bit(algorithm) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }

    fn bit(algorithm: Algorithm) -> u8 {
        1 << Algorithm::ALL
            .iter()
            .position(|a| *a == algorithm)
            .unwrap_or(0)
    }
}

impl Default for AlgorithmSet {
    fn default() -> Self {
        AlgorithmSet::ALL
    }
}

/// Parses a list such as `sha1,sha256` (bbb-web's `supportedChecksumAlgorithms`) or
/// `SHA1:SHA256` (Scalelite's `LOADBALANCER_CHECKSUM_ALGORITHM`).
impl FromStr for AlgorithmSet {
    type Err = ChecksumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split([',', ':'])
            .filter(|part| !part.trim().is_empty())
            .try_fold(AlgorithmSet::empty(), |set, part| {
                Ok(set.with(part.parse()?))
            })
    }
}

impl fmt::Display for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Algorithm::name).collect();
        f.write_str(&names.join(","))
    }
}

/// The lower-case hex checksum of `call + query + secret`.
pub fn compute(algorithm: Algorithm, call: &str, query: &str, secret: &str) -> String {
    let mut sum = String::with_capacity(algorithm.hex_len());
    push_checksum(&mut sum, algorithm, call, query, secret);
    sum
}

/// Appends [`compute`]'s checksum to `out` (no allocation of its own beyond the digest).
pub fn push_checksum(
    out: &mut String,
    algorithm: Algorithm,
    call: &str,
    query: &str,
    secret: &str,
) {
    let digest = algorithm.digest(&[call.as_bytes(), query.as_bytes(), secret.as_bytes()]);
    let mut hex = [0u8; 128];
    let hex = &mut hex[..digest.len() * 2];
    if hex::encode_to_slice(&digest, hex).is_ok() {
        out.push_str(std::str::from_utf8(hex).unwrap_or_default());
    }
}

impl SignedQuery {
    /// Splits `raw_query` into the signed payload and the checksum, and picks the algorithm by the
    /// checksum's length. Refuses a missing or repeated checksum and a disabled algorithm.
    pub fn parse(raw_query: &str, allowed: AlgorithmSet) -> Result<SignedQuery, ChecksumError> {
        let (payload, checksum) = strip_checksum(raw_query)?;
        let algorithm = Algorithm::from_hex_len(checksum.len())
            .ok_or(ChecksumError::UnknownLength(checksum.len()))?;
        if !allowed.contains(algorithm) {
            return Err(ChecksumError::Disabled(algorithm));
        }
        let mut digest = [0u8; 64];
        let digest = &mut digest[..checksum.len() / 2];
        hex::decode_to_slice(&checksum, digest).map_err(|_| ChecksumError::NotHex)?;
        Ok(SignedQuery {
            payload,
            algorithm,
            digest: digest.to_vec(),
        })
    }

    /// Whether the checksum was made for `call` with `secret`. Constant-time in the digest.
    pub fn matches(&self, call: &str, secret: &str) -> bool {
        let expected =
            self.algorithm
                .digest(&[call.as_bytes(), self.payload.as_bytes(), secret.as_bytes()]);
        expected.ct_eq(&self.digest).into()
    }

    /// Like [`SignedQuery::matches`], as a `Result`.
    pub fn verify(&self, call: &str, secret: &str) -> Result<(), ChecksumError> {
        if self.matches(call, secret) {
            Ok(())
        } else {
            Err(ChecksumError::Mismatch)
        }
    }
}

/// Verifies a whole request in one step: `Ok(algorithm)` when `raw_query` carries a checksum made
/// for `call` with `secret` by an allowed algorithm.
pub fn verify(
    call: &str,
    raw_query: &str,
    secret: &str,
    allowed: AlgorithmSet,
) -> Result<Algorithm, ChecksumError> {
    let signed = SignedQuery::parse(raw_query, allowed)?;
    signed.verify(call, secret)?;
    Ok(signed.algorithm)
}

/// Removes the `checksum` parameter from `raw_query` with bbb-web's literal rules and returns the
/// remaining query and the checksum's (decoded, trimmed) value.
pub fn strip_checksum(raw_query: &str) -> Result<(String, String), ChecksumError> {
    let mut values = raw_query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("checksum="));
    let raw_value = values.next().ok_or(ChecksumError::Missing)?;
    if values.next().is_some() {
        return Err(ChecksumError::Duplicate);
    }
    let payload = match raw_query.matches("checksum=").count() {
        // The usual case: the one occurrence is the pair itself, at the start or after a `&`,
        // and bbb-web's three replacements reduce to cutting that pair and one `&`.
        1 => {
            let pair = raw_value.as_ptr() as usize - raw_query.as_ptr() as usize - 9;
            let end = pair + 9 + raw_value.len();
            if pair > 0 {
                [&raw_query[..pair - 1], &raw_query[end..]].concat()
            } else {
                raw_query.get(end + 1..).unwrap_or_default().to_owned()
            }
        }
        _ => replace_literally(raw_query, raw_value),
    };
    let value = if raw_value.contains('%') {
        percent_encoding::percent_decode_str(raw_value)
            .decode_utf8_lossy()
            .trim()
            .to_owned()
    } else {
        raw_value.trim().to_owned()
    };
    Ok((payload, value))
}

/// bbb-web's removal, word for word: three literal replacements over the whole query.
fn replace_literally(raw_query: &str, raw_value: &str) -> String {
    let mut payload = raw_query.to_owned();
    for pattern in [
        format!("&checksum={raw_value}"),
        format!("checksum={raw_value}&"),
        format!("checksum={raw_value}"),
    ] {
        payload = payload.replace(&pattern, "");
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vector {
        id: u32,
        call: String,
        query: String,
        secret: String,
        alg: String,
        checksum: String,
    }

    fn vectors() -> Vec<Vector> {
        let text = include_str!("../tests/fixtures/checksum-vectors.json");
        serde_json::from_str(text).expect("fixture parses")
    }

    fn query_of(v: &Vector) -> &str {
        if v.query == "(empty)" {
            ""
        } else {
            &v.query
        }
    }

    #[test]
    fn every_reference_vector_computes_and_verifies() {
        for v in vectors() {
            let alg: Algorithm = v.alg.parse().unwrap();
            let query = query_of(&v);
            if v.call == "(mobile)" {
                // Mobile rows hash query + salt without a call name.
                assert_eq!(
                    compute(alg, "", query, &v.secret),
                    v.checksum,
                    "vector {}",
                    v.id
                );
                continue;
            }
            assert_eq!(
                compute(alg, &v.call, query, &v.secret),
                v.checksum,
                "vector {}",
                v.id
            );
            let raw = if query.is_empty() {
                format!("checksum={}", v.checksum)
            } else {
                format!("{query}&checksum={}", v.checksum)
            };
            assert_eq!(
                verify(&v.call, &raw, &v.secret, AlgorithmSet::ALL),
                Ok(alg),
                "vector {}",
                v.id
            );
        }
    }

    #[test]
    fn a_checksum_verifies_only_its_own_row() {
        let vectors: Vec<Vector> = vectors()
            .into_iter()
            .filter(|v| v.call != "(mobile)")
            .collect();
        for a in &vectors {
            for b in &vectors {
                if (&a.call, &a.query, &a.secret) == (&b.call, &b.query, &b.secret) {
                    continue;
                }
                let raw = format!("{}&checksum={}", query_of(b), a.checksum);
                let raw = raw.trim_start_matches('&');
                assert!(
                    verify(&b.call, raw, &b.secret, AlgorithmSet::ALL).is_err(),
                    "checksum of vector {} accepted for vector {}",
                    a.id,
                    b.id
                );
            }
        }
    }

    const V1_QUERY: &str =
        "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444";
    const V1_SECRET: &str = "639259d4-9dd8-4b25-bf01-95f9567eaf4b";
    const V1_SUM: &str = "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17";

    fn check(raw: &str, allowed: AlgorithmSet, expected: Result<Algorithm, ChecksumError>) {
        assert_eq!(verify("create", raw, V1_SECRET, allowed), expected, "{raw}");
    }

    #[test]
    fn checksum_may_stand_anywhere() {
        check(
            &format!("checksum={V1_SUM}&{V1_QUERY}"),
            AlgorithmSet::ALL,
            Ok(Algorithm::Sha1),
        );
        check(
            &format!("name=Test+Meeting&meetingID=abc123&checksum={V1_SUM}&attendeePW=111222&moderatorPW=333444"),
            AlgorithmSet::ALL,
            Ok(Algorithm::Sha1),
        );
    }

    #[test]
    fn upper_case_hex_verifies() {
        check(
            &format!("{V1_QUERY}&checksum={}", V1_SUM.to_uppercase()),
            AlgorithmSet::ALL,
            Ok(Algorithm::Sha1),
        );
    }

    #[test]
    fn refusals() {
        check(V1_QUERY, AlgorithmSet::ALL, Err(ChecksumError::Missing));
        check(
            &format!("{V1_QUERY}&checksum={}", &V1_SUM[..39]),
            AlgorithmSet::ALL,
            Err(ChecksumError::UnknownLength(39)),
        );
        check(
            &format!("{V1_QUERY}&checksum={V1_SUM}0"),
            AlgorithmSet::ALL,
            Err(ChecksumError::UnknownLength(41)),
        );
        check(
            &format!("{V1_QUERY}&checksum={V1_SUM}&checksum={V1_SUM}"),
            AlgorithmSet::ALL,
            Err(ChecksumError::Duplicate),
        );
        let sha384 = "891ac633df39d0a1b4f8d597f3e190833216c4b29c4fb51ea3ca72757eeb958d6e7b49a845cf29f5c6019c7d29d029d1";
        let sha1_sha256: AlgorithmSet = "sha1,sha256".parse().unwrap();
        check(
            &format!("{V1_QUERY}&checksum={sha384}"),
            sha1_sha256,
            Err(ChecksumError::Disabled(Algorithm::Sha384)),
        );
        check(
            &format!("{V1_QUERY}&checksum={}", "z".repeat(40)),
            AlgorithmSet::ALL,
            Err(ChecksumError::NotHex),
        );
        check(
            &format!("{V1_QUERY}&moderatorPW=x&checksum={V1_SUM}"),
            AlgorithmSet::ALL,
            Err(ChecksumError::Mismatch),
        );
    }

    #[test]
    fn algorithm_sets_parse_and_print() {
        let scalelite: AlgorithmSet = "SHA1:SHA256".parse().unwrap();
        assert_eq!(scalelite.to_string(), "sha1,sha256");
        let set: AlgorithmSet = "sha256, SHA512".parse().unwrap();
        assert!(set.contains(Algorithm::Sha256) && set.contains(Algorithm::Sha512));
        assert!(!set.contains(Algorithm::Sha1));
        assert_eq!(set.to_string(), "sha256,sha512");
        assert!("sha1,md5".parse::<AlgorithmSet>().is_err());
    }

    proptest::proptest! {
        /// The single-occurrence shortcut removes exactly what bbb-web's replacements remove.
        #[test]
        fn stripping_matches_bbb_web(
            pairs in proptest::collection::vec("(x?checksum|a|b)=[a-c0-9%]{0,4}", 0..5),
            at in 0usize..6,
            value in "[a-c0-9]{0,6}",
        ) {
            let mut pairs = pairs;
            pairs.insert(at.min(pairs.len()), format!("checksum={value}"));
            let query = pairs.join("&");
            if let Ok((payload, _)) = strip_checksum(&query) {
                proptest::prop_assert_eq!(payload, replace_literally(&query, &value));
            }
        }
    }
}
