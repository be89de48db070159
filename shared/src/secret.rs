//! [`Secret`]: a string that is a secret (a node's or an integration's BBB secret, a token),
//! whose `Debug` and `Display` never show it.

use std::fmt;

use serde::Deserialize;

/// A secret whose `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn never_prints_itself() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
    }
}
