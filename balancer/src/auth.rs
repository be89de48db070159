//! The credentials every door shares: argon2id password hashes, random tokens and secrets
//! (only a token's sha256 is stored), constant-time comparison, and the limits on failed
//! logins. The web's cookies and sessions are in `dashboard/auth.rs`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::failures::{Budget, FailureLimits};

/// Failed logins allowed per address at once (see [`login_limits`]).
const MAX_FAILURES: usize = 5;

/// An argon2id hash (PHC string) of `password`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt =
        SaltString::encode_b64(&rand::rng().random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A real hash of a random password, verified against when the user does not exist so that
/// the answer takes as long either way (computed once).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&token()).unwrap_or_default())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A fresh random token (hex).
pub fn token() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A random password for generated accounts (the demo's): 16 letters and digits.
pub fn random_password() -> String {
    token()[..16].to_owned()
}

/// A random secret, as long as BBB's (40 hex characters).
pub fn random_secret() -> String {
    hex::encode(rand::rng().random::<[u8; 20]>())
}

/// Failed logins: five per address at once, then one a minute; and once a hundred failed from
/// everywhere, addresses that failed wait for the refill too (a password guessed from many).
pub fn login_limits() -> FailureLimits {
    FailureLimits {
        client: Budget {
            burst: MAX_FAILURES as f64,
            per_hour: 60.0,
        },
        scope: Budget {
            burst: 100.0,
            per_hour: 120.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failures::{FailureLimiter, Verdict};
    use std::net::IpAddr;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn the_limiter_counts_failures_per_address() {
        let limiter = FailureLimiter::new(login_limits());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let allows = |ip| limiter.verdict(Some(ip), || None) == Verdict::Check;
        for _ in 0..MAX_FAILURES {
            assert!(allows(a));
            limiter.failed(Some(a), None);
        }
        assert!(!allows(a));
        assert!(allows(b));
    }

    #[test]
    fn tokens_compare_in_constant_time_and_never_empty() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("", ""));
    }
}
