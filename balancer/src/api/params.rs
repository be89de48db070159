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

/// The value the node gets for `name` after `rules`, as [`rewrite`] decides it: an
/// override, else the client's (none if dropped or excluded), else a default.
pub fn effective(params: &Query, rules: &Rewrite<'_>, name: &str) -> Option<String> {
    let listed = |list: &[(String, String)]| {
        list.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let sent = params.params().iter().any(|p| p.name == name);
    let removed = rules.drop.contains(&name) || rules.exclude.iter().any(|k| k == name);
    let value = match (listed(rules.overrides), sent) {
        (Some(value), _) => Some(value),
        (None, true) if removed => None,
        (None, true) => params.get_trimmed(name),
        (None, false) => listed(rules.defaults),
    };
    value.filter(|v| !v.is_empty())
}

/// The rewritten raw query, a form body's pairs included (the node gets them in the query).
pub fn rewrite(params: &Query, rules: &Rewrite<'_>) -> String {
    let overridden = |name: &str| rules.overrides.iter().any(|(k, _)| k == name);
    let sent = |name: &str| params.params().iter().any(|p| p.name == name);
    let mut pieces: Vec<String> = params
        .params()
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
    fn the_effective_value_follows_the_rewrite() {
        let q = Query::parse("redirect=false&logo=x&name=Room").unwrap();
        let (defaults, overrides) = (
            vec![
                ("logo".to_owned(), "d".to_owned()),
                ("lang".to_owned(), "pt".to_owned()),
            ],
            vec![("redirect".to_owned(), "true".to_owned())],
        );
        let rules = Rewrite {
            drop: &["checksum"],
            exclude: &["logo".to_owned()],
            defaults: &defaults,
            overrides: &overrides,
        };
        let of = |name| effective(&q, &rules, name);
        assert_eq!(of("redirect").as_deref(), Some("true"), "an override wins");
        assert_eq!(of("logo"), None, "excluded, and sent: no default");
        assert_eq!(of("lang").as_deref(), Some("pt"), "a default when not sent");
        assert_eq!(of("name").as_deref(), Some("Room"));
        assert_eq!(of("absent"), None);
    }

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
