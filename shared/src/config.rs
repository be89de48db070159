//! The configuration loader the three binaries share: one TOML file, then Scalelite's
//! environment names (each binary's alias table), then every `CONFLUX_<SECTION>__<KEY>`
//! variable, then serde into the binary's raw configuration type, whose
//! `deny_unknown_fields` refuses an unknown key whether it came from the file or the
//! environment. The keys the environment may set are the raw type's own fields: there is no
//! list to keep in step. A variable's value is typed by trying it as a TOML value (a number, a
//! boolean), as text, as a comma-separated list and as `key=value` pairs, and taking the first
//! the field accepts. Variables without `__` are the binaries' command-line options
//! ([`OPTIONS`], `CONFLUX_CONFIG`); any other is a misspelling and refused, except
//! `CONFLUX_TEST_*` and `CONFLUX_BENCH_*`, the test suite's and the benchmarks' own.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// The `CONFLUX_` variables that are not configuration keys: the three binaries' options.
pub const OPTIONS: &[&str] = &[
    "CONFLUX_CONFIG",
    "CONFLUX_DATA_DIR",
    "CONFLUX_AGENT_CONFIG",
    "CONFLUX_RECORDER_CONFIG",
];

/// One of Scalelite's environment names and the key it sets.
#[derive(Debug, Clone, Copy)]
pub struct Alias {
    pub var: &'static str,
    pub section: &'static str,
    pub key: &'static str,
    pub kind: Kind,
}

/// How an alias's value becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Parsed as a TOML value (numbers, booleans), else taken as a string.
    Value,
    Text,
    /// Scalelite's `true`/`1`/`yes`/`on`.
    Bool,
    /// Minutes, converted to seconds.
    Minutes,
    List(char),
    /// `key=value,key=value`.
    Pairs,
}

/// Where a configuration comes from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The TOML file; `None` for none.
    pub file: Option<&'a Path>,
    /// Whether a missing file is an error (a file named on the command line) or means an
    /// empty one (the default path: the environment may carry everything).
    pub required: bool,
    /// The environment, as (name, value) pairs.
    pub env: &'a [(String, String)],
    pub aliases: &'a [Alias],
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    /// A variable that sets no key, or a value its key refuses.
    #[error("{var}: {problem}")]
    Env { var: String, problem: String },
}

/// The raw configuration from `sources` (see the module's documentation).
pub fn load<Raw: DeserializeOwned>(sources: Sources<'_>) -> Result<Raw, LoadError> {
    let mut base = match sources.file {
        Some(path) => read(path, sources.required)?,
        None => toml::Table::new(),
    };
    for alias in sources.aliases {
        if let Some((_, value)) = sources.env.iter().find(|(name, _)| name == alias.var) {
            let value = convert(value, alias.kind).map_err(|problem| LoadError::Env {
                var: alias.var.into(),
                problem,
            })?;
            set(&mut base, alias.section, alias.key, value);
        }
    }
    let mut table = base.clone();
    for (name, value) in sources.env {
        let Some(rest) = name.strip_prefix("CONFLUX_") else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            check_option(name)?;
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let value =
            typed::<Raw>(&base, &section, &key, value).map_err(|problem| LoadError::Env {
                var: name.clone(),
                problem,
            })?;
        set(&mut table, &section, &key, value);
    }
    parse(table).map_err(LoadError::Parse)
}

/// Refuses a `CONFLUX_` variable without `__` that is no option of ours (a misspelling would
/// otherwise be silently ignored), naming the closest option.
fn check_option(name: &str) -> Result<(), LoadError> {
    let ours = ["CONFLUX_TEST_", "CONFLUX_BENCH_"];
    if OPTIONS.contains(&name) || ours.iter().any(|p| name.starts_with(p)) {
        return Ok(());
    }
    let closest = OPTIONS
        .iter()
        .min_by_key(|option| strsim::levenshtein(option, name))
        .copied()
        .unwrap_or("CONFLUX_CONFIG");
    Err(LoadError::Env {
        var: name.to_owned(),
        problem: format!(
            "not a Conflux variable: did you mean {closest}, or a key as CONFLUX_<SECTION>__<KEY>?"
        ),
    })
}

/// `value` as the first type the key accepts, tried on `base` with only this key set. When
/// `base` itself is refused the first candidate is taken (the whole table's error names it).
fn typed<Raw: DeserializeOwned>(
    base: &toml::Table,
    section: &str,
    key: &str,
    value: &str,
) -> Result<toml::Value, String> {
    let candidates = [Kind::Value, Kind::Text, Kind::List(','), Kind::Pairs]
        .into_iter()
        .filter_map(|kind| convert(value, kind).ok());
    let mut first_error = None;
    let mut first = None;
    for candidate in candidates {
        let mut probe = base.clone();
        set(&mut probe, section, key, candidate.clone());
        match parse::<Raw>(probe) {
            Ok(_) => return Ok(candidate),
            Err(e) => {
                first_error.get_or_insert(e);
                first.get_or_insert(candidate);
            }
        }
    }
    if parse::<Raw>(base.clone()).is_err() {
        return first.ok_or_else(|| "no value".to_owned());
    }
    Err(first_error.unwrap_or_else(|| "no value".to_owned()))
}

fn read(path: &Path, required: bool) -> Result<toml::Table, LoadError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| LoadError::Parse(one_line(&e.to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(toml::Table::new()),
        Err(source) => Err(LoadError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse<Raw: DeserializeOwned>(table: toml::Table) -> Result<Raw, String> {
    table
        .try_into()
        .map_err(|e: toml::de::Error| one_line(&e.to_string()))
}

/// An environment value as a TOML value of `kind`.
pub fn convert(value: &str, kind: Kind) -> Result<toml::Value, String> {
    let value = value.trim();
    Ok(match kind {
        Kind::Text => toml::Value::String(value.into()),
        Kind::Value => format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.into())),
        Kind::Bool => toml::Value::Boolean(match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" | "" => false,
            other => return Err(format!("{other:?} is not a boolean")),
        }),
        Kind::Minutes => {
            let minutes: f64 = value
                .parse()
                .map_err(|_| format!("{value:?} is not a number of minutes"))?;
            toml::Value::Float(minutes * 60.0)
        }
        Kind::List(sep) => toml::Value::Array(
            value
                .split(sep)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| convert(s, Kind::Value).unwrap_or(toml::Value::String(s.into())))
                .collect(),
        ),
        Kind::Pairs => {
            let mut table = toml::Table::new();
            for pair in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or(format!("{pair:?} is not key=value"))?;
                table.insert(k.trim().into(), toml::Value::String(v.trim().into()));
            }
            toml::Value::Table(table)
        }
    })
}

fn set(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    let entry = table
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(inner) = entry {
        inner.insert(key.to_owned(), value);
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Raw {
        api: Api,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Api {
        secret: Option<String>,
        interval: f64,
        ports: Vec<u16>,
        exclude: Vec<String>,
        defaults: BTreeMap<String, String>,
        on: bool,
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Raw, LoadError> {
        let env: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let aliases = [Alias {
            var: "SCALELITE_ON",
            section: "api",
            key: "on",
            kind: Kind::Bool,
        }];
        load(Sources {
            file: None,
            required: false,
            env: &env,
            aliases: &aliases,
        })
    }

    #[test]
    fn every_field_is_settable_from_the_environment_with_its_type() {
        let raw = load_env(&[
            ("CONFLUX_API__SECRET", "12345"),
            ("CONFLUX_API__INTERVAL", "2.5"),
            ("CONFLUX_API__PORTS", "443, 7443"),
            ("CONFLUX_API__EXCLUDE", "a,b"),
            ("CONFLUX_API__DEFAULTS", "x=1,y=2"),
            ("SCALELITE_ON", "yes"),
            ("CONFLUX_CONFIG", "/etc/elsewhere.toml"),
        ])
        .unwrap();
        assert_eq!(raw.api.secret.as_deref(), Some("12345"));
        assert_eq!(raw.api.interval, 2.5);
        assert_eq!(raw.api.ports, [443, 7443]);
        assert_eq!(raw.api.exclude, ["a", "b"]);
        assert_eq!(raw.api.defaults.len(), 2);
        assert!(raw.api.on);
    }

    #[test]
    fn an_unknown_variable_or_a_bad_value_names_the_variable() {
        for (var, value) in [
            ("CONFLUX_API__SECRETS", "x"),
            ("CONFLUX_NOPE__X", "1"),
            ("CONFLUX_API__PORTS", "https"),
        ] {
            let e = load_env(&[(var, value)]).unwrap_err().to_string();
            assert!(e.starts_with(var), "{e}");
        }
        for var in [
            "CONFLUX_DATADIR",
            "CONFLUX_CONFIG_FILE",
            "CONFLUX_API_SECRET",
        ] {
            let e = load_env(&[(var, "x")]).unwrap_err().to_string();
            assert!(e.starts_with(var) && e.contains("did you mean"), "{e}");
        }
        let e = load_env(&[("CONFLUX_DATADIR", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("CONFLUX_DATA_DIR"), "{e}");
        for var in [
            "CONFLUX_CONFIG",
            "CONFLUX_TEST_POSTGRES",
            "CONFLUX_BENCH_TLS",
        ] {
            assert!(load_env(&[(var, "x")]).is_ok(), "{var}");
        }
        let e = load_env(&[("SCALELITE_ON", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SCALELITE_ON"), "{e}");
    }
}
