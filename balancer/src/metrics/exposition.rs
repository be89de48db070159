//! The two text formats `/metrics` speaks. prometheus_client writes OpenMetrics; a scraper that
//! does not ask for it (`Accept`) gets the classic Prometheus text format (0.0.4), which
//! `promtool check metrics`, curl and older scrapers read: counters named `_total` in their
//! HELP and TYPE, no `# UNIT`, `# EOF` or exemplars. Either way every family is listed from
//! the start, with its HELP and TYPE, even before it has a sample (prometheus_client leaves an
//! empty family out).

/// A family as registered: its full name (with the `conflux_` prefix) and kind.
#[derive(Debug, Clone)]
pub struct Described {
    pub name: String,
    pub help: &'static str,
    /// OpenMetrics' type: `counter`, `gauge`, `histogram` or `info`.
    pub kind: &'static str,
}

/// Which format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Classic,
}

impl Format {
    /// The classic format unless `Accept` takes OpenMetrics and nothing else: what Go's
    /// client library does by default, so Prometheus' default `Accept` (OpenMetrics first,
    /// `text/plain` after) gets the classic format, and a scraper that asks for OpenMetrics
    /// alone gets it.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Classic;
        };
        let taken = |wanted: &[&str]| crate::accept::takes(accept, wanted);
        if taken(&["application/openmetrics-text"]) && !taken(&["text/plain", "text/*", "*/*"]) {
            Format::OpenMetrics
        } else {
            Format::Classic
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// `openmetrics` (prometheus_client's output) with the families it left out for having no
/// sample described, in `format`.
pub fn render(openmetrics: &str, families: &[Described], format: Format) -> String {
    let mut text = String::with_capacity(openmetrics.len() + families.len() * 100);
    let body = openmetrics.strip_suffix("# EOF\n").unwrap_or(openmetrics);
    text.push_str(body);
    for family in families {
        if !body.contains(&format!("# TYPE {} ", family.name)) {
            text.push_str(&format!(
                "# HELP {} {}\n# TYPE {} {}\n",
                family.name, family.help, family.name, family.kind
            ));
        }
    }
    match format {
        Format::OpenMetrics => {
            text.push_str("# EOF\n");
            text
        }
        Format::Classic => classic(&text),
    }
}

/// The classic text format of an OpenMetrics exposition (without its `# EOF`).
fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    let mut kind = "";
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').or(Some((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, om_kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            kind = om_kind;
            let (name, kind) = match om_kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), om_kind),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue; // # UNIT, # EOF
        }
        // A sample: no exemplar, and no `_created` series of counters and histograms.
        let sample = line.split(" # {").next().unwrap_or(line);
        let series = sample.split(['{', ' ']).next().unwrap_or("");
        if matches!(kind, "counter" | "histogram") && series.ends_with("_created") {
            continue;
        }
        out.push_str(sample);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families() -> Vec<Described> {
        [
            ("conflux_api_requests", "BBB API calls answered.", "counter"),
            (
                "conflux_node_online",
                "1 if the node answers its API.",
                "gauge",
            ),
            ("conflux_build", "The build.", "info"),
        ]
        .map(|(name, help, kind)| Described {
            name: name.to_owned(),
            help,
            kind,
        })
        .to_vec()
    }

    const OPENMETRICS: &str = "# HELP conflux_api_requests BBB API calls answered.\n\
        # TYPE conflux_api_requests counter\n\
        conflux_api_requests_total{call=\"create\"} 3\n\
        conflux_api_requests_created{call=\"create\"} 1700000000.0\n\
        # HELP conflux_build The build.\n\
        # TYPE conflux_build info\n\
        conflux_build_info{version=\"0.1.0\"} 1\n\
        # HELP conflux_wait_seconds Waits.\n\
        # TYPE conflux_wait_seconds histogram\n\
        # UNIT conflux_wait_seconds seconds\n\
        conflux_wait_seconds_bucket{le=\"+Inf\"} 1 # {trace=\"a\"} 0.5\n\
        # EOF\n";

    #[test]
    fn the_classic_format_names_counters_with_their_suffix_and_drops_what_it_lacks() {
        let text = render(OPENMETRICS, &families(), Format::Classic);
        assert_eq!(
            text,
            "# HELP conflux_api_requests_total BBB API calls answered.\n\
             # TYPE conflux_api_requests_total counter\n\
             conflux_api_requests_total{call=\"create\"} 3\n\
             # HELP conflux_build_info The build.\n\
             # TYPE conflux_build_info gauge\n\
             conflux_build_info{version=\"0.1.0\"} 1\n\
             # HELP conflux_wait_seconds Waits.\n\
             # TYPE conflux_wait_seconds histogram\n\
             conflux_wait_seconds_bucket{le=\"+Inf\"} 1\n\
             # HELP conflux_node_online 1 if the node answers its API.\n\
             # TYPE conflux_node_online gauge\n"
        );
    }

    #[test]
    fn openmetrics_keeps_its_form_and_lists_empty_families_before_its_end() {
        let text = render(OPENMETRICS, &families(), Format::OpenMetrics);
        assert!(text.starts_with("# HELP conflux_api_requests BBB"));
        assert!(text.ends_with(
            "# HELP conflux_node_online 1 if the node answers its API.\n\
             # TYPE conflux_node_online gauge\n# EOF\n"
        ));
        assert_eq!(text.matches("# TYPE conflux_api_requests ").count(), 1);
    }

    #[test]
    fn openmetrics_is_served_only_to_whoever_asks_for_it_alone() {
        for openmetrics in [
            "application/openmetrics-text;version=1.0.0",
            "application/openmetrics-text; version=1.0.0, text/plain;q=0",
        ] {
            assert_eq!(Format::negotiate(Some(openmetrics)), Format::OpenMetrics);
        }
        // Prometheus' own default.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for classic in [
            None,
            Some(prometheus),
            Some("*/*"),
            Some("text/plain;version=0.0.4"),
            Some("application/openmetrics-text;q=0, text/plain"),
        ] {
            assert_eq!(Format::negotiate(classic), Format::Classic, "{classic:?}");
        }
    }
}
