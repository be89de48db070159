//! Scalelite's environment beyond the variables Conflux takes as aliases: those that mean
//! nothing here (a Scalelite `.env` carried over names them; one warning line lists the ones
//! set), and `PORT`/`BIND`, where Scalelite's puma listens, honoured as `server.listen`.

use super::ConfigError;

/// Scalelite's variables with no meaning in Conflux: Rails, Redis, its recording importer's
/// folders, S3/CloudFront, FreeSWITCH, its Docker images.
pub const UNUSED: &[&str] = &[
    "SECRET_KEY_BASE",
    "REDIS_URL",
    "REDIS_POOL",
    "REDIS_NAMESPACE",
    "DB_DISABLED",
    "PREPARED_STATEMENT",
    "DB_CONNECTION_RETRY_COUNT",
    "POLLER_THREADS",
    "POLLER_WAIT_TIMEOUT",
    "SERVER_ID_IS_HOSTNAME",
    "RECORDING_IMPORT_POLL",
    "RECORDING_IMPORT_UNPUBLISHED",
    "RECORDING_WORK_DIR",
    "RECORDING_PUBLISH_DIR",
    "RECORDING_UNPUBLISH_DIR",
    "RECORDING_PLAYBACK_FORMATS",
    "PROTECTED_RECORDINGS_TIMEOUT",
    "MULTITENANCY_ENABLED",
    "VOICE_BRIDGE_LEN",
    "VOICE_BRIDGE_MIN",
    "VOICE_BRIDGE_MAX",
    "USE_EXTERNAL_VOICE_BRIDGE",
    "FSAPI_PASSWORD",
    "FSAPI_MAX_DURATION",
    "DEFAULT_MEETING_TTL",
    "DEFAULT_LOCALE",
    "S3_RECORDING",
    "S3_BUCKET_NAME",
    "CLOUDFRONT_URL",
    "CF_KEY_PAIR_ID",
    "CF_PRIVATE_KEY_B64",
    "RAILS_ENV",
    "RAILS_MAX_THREADS",
    "RAILS_MIN_THREADS",
    "RAILS_LOG_LEVEL",
    "RAILS_LOG_TO_STDOUT",
    "RAILS_SERVE_STATIC_FILES",
    "WEB_CONCURRENCY",
    "NGINX_SSL",
    "NGINX_BEHIND_PROXY",
    "BEHIND_PROXY",
    "NGINX_RECORDINGS_ONLY",
    "NGINX_HOSTNAME",
    "SCALELITE_API_PORT",
    "SCALELITE_TAG",
    "SCALELITE_RECORDING_DIR",
];

/// The warning for the unused Scalelite variables set in `env`, if any.
pub fn unused(env: &[(String, String)]) -> Option<String> {
    let set: Vec<&str> = UNUSED
        .iter()
        .copied()
        .filter(|var| env.iter().any(|(name, _)| name == var))
        .collect();
    (!set.is_empty()).then(|| {
        format!(
            "Scalelite's {} mean nothing to Conflux and are ignored.",
            set.join(", ")
        )
    })
}

/// `env` with Scalelite's `PORT` and `BIND` (puma's `tcp://HOST:PORT`, or a host) given as
/// `CONFLUX_SERVER__LISTEN`: all interfaces and port 3000 unless they say otherwise, as
/// Scalelite listens. An explicit `CONFLUX_SERVER__LISTEN` wins.
pub fn with_listen(env: &[(String, String)]) -> Result<Vec<(String, String)>, ConfigError> {
    let get = |var: &str| {
        env.iter()
            .find(|(name, _)| name == var)
            .map(|(_, v)| v.trim())
    };
    let mut env = env.to_vec();
    let (port, bind) = (get("PORT"), get("BIND"));
    if get("CONFLUX_SERVER__LISTEN").is_some() || (port.is_none() && bind.is_none()) {
        return Ok(env);
    }
    let invalid = |var: &str, value: &str| ConfigError::Invalid {
        key: var.to_owned(),
        problem: format!("{value:?} is not a port"),
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| invalid("PORT", p))?,
        None => 3000,
    };
    let listen = match bind.map(|b| b.strip_prefix("tcp://").unwrap_or(b)) {
        None | Some("") => format!("0.0.0.0:{port}"),
        Some(b) if b.parse::<std::net::SocketAddr>().is_ok() => b.to_owned(),
        Some(b) => match b.rsplit_once(':') {
            // host:port, but not a bare IPv6 address
            Some((host, p)) if !host.contains(':') || host.ends_with(']') => {
                p.parse::<u16>().map_err(|_| invalid("BIND", b))?;
                b.to_owned()
            }
            _ if b.contains(':') => format!("[{b}]:{port}"),
            _ => format!("{b}:{port}"),
        },
    };
    env.push(("CONFLUX_SERVER__LISTEN".to_owned(), listen));
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn listen(pairs: &[(&str, &str)]) -> Option<String> {
        with_listen(&env(pairs))
            .unwrap()
            .into_iter()
            .rev()
            .find(|(k, _)| k == "CONFLUX_SERVER__LISTEN")
            .map(|(_, v)| v)
    }

    #[test]
    fn port_and_bind_become_the_listen_address_as_puma_reads_them() {
        assert_eq!(listen(&[]), None);
        assert_eq!(listen(&[("PORT", "3000")]).unwrap(), "0.0.0.0:3000");
        assert_eq!(
            listen(&[("BIND", "tcp://127.0.0.1:4000")]).unwrap(),
            "127.0.0.1:4000"
        );
        assert_eq!(
            listen(&[("BIND", "127.0.0.1"), ("PORT", "81")]).unwrap(),
            "127.0.0.1:81"
        );
        assert_eq!(listen(&[("BIND", "::1")]).unwrap(), "[::1]:3000");
        assert_eq!(listen(&[("BIND", "[::1]:81")]).unwrap(), "[::1]:81");
        assert_eq!(
            listen(&[("BIND", "lb.example.org:81")]).unwrap(),
            "lb.example.org:81"
        );
        assert_eq!(
            listen(&[("PORT", "3000"), ("CONFLUX_SERVER__LISTEN", "127.0.0.1:1")]).unwrap(),
            "127.0.0.1:1",
            "an explicit listen address wins"
        );
        for bad in [("PORT", "http"), ("PORT", "70000"), ("BIND", "host:port")] {
            let e = with_listen(&env(&[bad])).unwrap_err().to_string();
            assert!(e.contains(bad.0), "{e}");
        }
    }

    #[test]
    fn one_warning_names_every_unused_variable_set() {
        assert_eq!(unused(&env(&[("LOADBALANCER_SECRET", "s")])), None);
        let warning = unused(&env(&[
            ("REDIS_URL", "redis://x"),
            ("SECRET_KEY_BASE", "k"),
            ("POLL_INTERVAL", "5"),
        ]))
        .unwrap();
        assert!(warning.contains("SECRET_KEY_BASE, REDIS_URL"), "{warning}");
        assert!(!warning.contains("POLL_INTERVAL"), "{warning}");
    }
}
