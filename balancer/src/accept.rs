//! The weights of an `Accept` or `Accept-Encoding` header (RFC 9110 12.4.2), for the content
//! negotiations the balancer does: a gzipped getMeetings, OpenMetrics at `/metrics`.

/// The weight `header` gives the first of its elements named like one of `names` (any case;
/// `q` defaults to 1, an unreadable `q` counts as 0), or None when it names none of them.
pub fn weight(header: &str, names: &[&str]) -> Option<f32> {
    header.split(',').find_map(|element| {
        let mut parts = element.split(';').map(str::trim);
        let name = parts.next()?;
        names.iter().any(|n| name.eq_ignore_ascii_case(n)).then(|| {
            parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(0.0))
        })
    })
}

/// Whether `header` takes one of `names` (a weight above zero).
pub fn takes(header: &str, names: &[&str]) -> bool {
    weight(header, names).is_some_and(|q| q > 0.0)
}
