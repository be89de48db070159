//! Rewriting a client's parameters before they reach a node (Scalelite's CREATE/JOIN
//! exclude, default and override lists). Untouched pairs keep their raw bytes; added ones are
//! encoded as Java's `URLEncoder` does.

use conflux_shared::query::encode;
use conflux_shared::Query;

/// What to change.
pub struct Rewrite<'a> {
    /// Dropped (the `checksum`, balancer-only parameters, configured exclusions).
    pub drop: &'a [&'a str],
    pub exclude: &'a [String],
    /// Added when the client did not send the key.
    pub defaults: &'a [(String, String)],
    /// Always win.
    pub overrides: &'a [(String, String)],
}

/// The rewritten raw URL query (form-body pairs are not part of it).
pub fn rewrite(params: &Query, rules: &Rewrite<'_>) -> String {
    let overridden = |name: &str| rules.overrides.iter().any(|(k, _)| k == name);
    let sent = |name: &str| params.url_params().iter().any(|p| p.name == name);
    let mut pieces: Vec<String> = params
        .url_params()
        .iter()
        .filter(|p| !rules.drop.contains(&p.name.as_str()))
        .filter(|p| !rules.exclude.contains(&p.name))
        .filter(|p| !overridden(&p.name))
        .map(|p| p.raw.clone())
        .collect();
    for (k, v) in rules.defaults {
        if !sent(k) && !overridden(k) {
            pieces.push(format!("{}={}", encode(k), encode(v)));
        }
    }
    for (k, v) in rules.overrides {
        pieces.push(format!("{}={}", encode(k), encode(v)));
    }
    pieces.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_default_override_keep_raw_bytes() {
        let q =
            Query::parse("meetingID=a%20b&name=Room+1&logo=x&record=true&checksum=abc").unwrap();
        let defaults = vec![
            ("muteOnStart".to_owned(), "true".to_owned()),
            ("name".to_owned(), "ignored".to_owned()),
        ];
        let overrides = vec![("record".to_owned(), "false".to_owned())];
        let out = rewrite(
            &q,
            &Rewrite {
                drop: &["checksum"],
                exclude: &["logo".to_owned()],
                defaults: &defaults,
                overrides: &overrides,
            },
        );
        assert_eq!(
            out,
            "meetingID=a%20b&name=Room+1&muteOnStart=true&record=false"
        );
    }
}
