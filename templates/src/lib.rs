//! The balancer's web pages and static files, embedded in the binary (no build step, nothing
//! fetched at run time). Templates are handlebars in strict mode with HTML escaping, so a
//! missing field is an error and every value is escaped; only this crate contains HTML.
//!
//! Static files include uPlot 1.6.32 (MIT, `static/vendor/uplot/`), vendored unchanged from npm.

use handlebars::Handlebars;
use serde::Serialize;

/// (name, source) of every template; `layout`, `node_rows` and `totals` are partials too.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../templates/layout.hbs")),
    ("login", include_str!("../templates/login.hbs")),
    ("dashboard", include_str!("../templates/dashboard.hbs")),
    ("node_rows", include_str!("../templates/node_rows.hbs")),
    ("totals", include_str!("../templates/totals.hbs")),
    ("node", include_str!("../templates/node.hbs")),
    ("message", include_str!("../templates/message.hbs")),
    ("admin", include_str!("../templates/admin.hbs")),
    ("report", include_str!("../templates/report.hbs")),
    ("network", include_str!("../templates/network.hbs")),
    ("alerts", include_str!("../templates/alerts.hbs")),
    ("meetings", include_str!("../templates/meetings.hbs")),
    ("recordings", include_str!("../templates/recordings.hbs")),
    ("playback", include_str!("../templates/playback.hbs")),
];

/// The recorder's answer to a playback URL it has nothing for (a static page: the recorder
/// renders no templates).
pub const RECORDING_NOT_FOUND: &str = include_str!("../templates/recording_not_found.html");

/// (path under `/static/`, bytes, content type).
const STATIC: &[(&str, &[u8], &str)] = &[
    (
        "style.css",
        include_bytes!("../static/style.css"),
        "text/css; charset=utf-8",
    ),
    (
        "app.js",
        include_bytes!("../static/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "vendor/uplot/uPlot.iife.min.js",
        include_bytes!("../static/vendor/uplot/uPlot.iife.min.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "vendor/uplot/uPlot.min.css",
        include_bytes!("../static/vendor/uplot/uPlot.min.css"),
        "text/css; charset=utf-8",
    ),
    (
        "vendor/uplot/LICENSE",
        include_bytes!("../static/vendor/uplot/LICENSE"),
        "text/plain; charset=utf-8",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {source}")]
    Parse {
        name: &'static str,
        source: Box<handlebars::TemplateError>,
    },
    #[error("rendering {name}: {source}")]
    Render {
        name: String,
        source: Box<handlebars::RenderError>,
    },
}

/// The compiled templates.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    pub fn new() -> Result<Templates, TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        for (name, source) in TEMPLATES {
            registry
                .register_template_string(name, source)
                .map_err(|e| TemplateError::Parse {
                    name,
                    source: Box::new(e),
                })?;
        }
        Ok(Templates { registry })
    }

    /// Renders template `name` with `data`.
    pub fn render(&self, name: &str, data: &impl Serialize) -> Result<String, TemplateError> {
        self.registry
            .render(name, data)
            .map_err(|e| TemplateError::Render {
                name: name.to_owned(),
                source: Box::new(e),
            })
    }
}

/// A static file: its bytes and content type.
pub fn static_file(path: &str) -> Option<(&'static [u8], &'static str)> {
    STATIC
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, bytes, kind)| (*bytes, *kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_compiles_and_escapes() {
        let t = Templates::new().unwrap();
        let page = t
            .render(
                "message",
                &json!({"title": "<T>", "message": "<script>x</script>", "user": null, "csrf": ""}),
            )
            .unwrap();
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"), "{page}");
        assert!(!page.contains("<script>x"), "{page}");
        assert!(
            page.contains("db-ip.com"),
            "DB-IP is credited on every page"
        );
    }

    #[test]
    fn strict_mode_refuses_missing_fields() {
        let t = Templates::new().unwrap();
        assert!(t.render("message", &json!({})).is_err());
    }

    #[test]
    fn static_files_have_types() {
        let (js, kind) = static_file("vendor/uplot/uPlot.iife.min.js").unwrap();
        assert!(js.len() > 40_000 && kind.starts_with("text/javascript"));
        assert!(static_file("../Cargo.toml").is_none());
    }
}
