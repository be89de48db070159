//! HTML5 playback: `/playback/<format>/<recordID>/` is a player page (slides and webcams) and
//! the files under it are served with Range support. Unpublished and deleted recordings are not
//! found. A protected recording needs the cookie that `/recording/<recordID>/<format>?token=T`
//! sets after consuming a one-time token minted by the balancer (Scalelite's scheme, with the
//! token signed by the integration's secret instead of kept in a shared Redis).

use std::sync::Arc;

use conflux_shared::response::Recording;
use conflux_shared::transfer;
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::config::Config;
use crate::store::{now_secs, Store};

/// How long the cookie of a protected recording lasts (Scalelite's default: 6 hours).
const COOKIE_SECS: i64 = 6 * 3600;

#[derive(Clone)]
pub struct Playback {
    pub config: Arc<Config>,
    pub store: Store,
    pub templates: Arc<conflux_templates::Templates>,
}

#[derive(Debug)]
struct NotFound;
impl warp::reject::Reject for NotFound {}

pub fn routes(app: Playback) -> BoxedFilter<(warp::reply::Response,)> {
    let with_app = {
        let app = app.clone();
        warp::any().map(move || app.clone())
    };
    let health = warp::get()
        .and(warp::path!("health"))
        .map(|| warp::reply::json(&json!({ "ok": true })).into_response());
    let token = warp::get()
        .and(warp::path!("recording" / String / String))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with_app.clone())
        .map(redeem);
    let page = warp::get()
        .and(warp::path!("playback" / String / String))
        .and(warp::path::end())
        .and(warp::header::optional::<String>("cookie"))
        .and(with_app.clone())
        .and_then(page);
    let files = warp::get()
        .and(warp::path("playback"))
        .and(warp::path::peek())
        .and(warp::header::optional::<String>("cookie"))
        .and(with_app)
        .and_then(
            |tail: warp::path::Peek, cookie: Option<String>, app: Playback| async move {
                let mut parts = tail.segments();
                let (Some(format), Some(rid)) = (parts.next(), parts.next()) else {
                    return Err(warp::reject::custom(NotFound));
                };
                app.allowed(format, rid, cookie.as_deref()).map(|_| ())
            },
        )
        .untuple_one()
        .and(warp::fs::dir(app.config.data_dir.join("published")))
        .map(Reply::into_response);
    health
        .or(token)
        .unify()
        .or(page)
        .unify()
        .or(files)
        .unify()
        .recover(|r: Rejection| async move {
            if r.is_not_found() || r.find::<NotFound>().is_some() {
                Ok(not_found())
            } else {
                Err(r)
            }
        })
        .unify()
        .boxed()
}

fn not_found() -> warp::reply::Response {
    warp::reply::with_status(
        warp::reply::html(conflux_templates::RECORDING_NOT_FOUND),
        StatusCode::NOT_FOUND,
    )
    .into_response()
}

fn cookie_name(format: &str, rid: &str) -> String {
    format!("cfx_{format}_{rid}")
}

impl Playback {
    /// The recording, if `format` of it may be shown to a browser with `cookie`.
    fn allowed(
        &self,
        format: &str,
        rid: &str,
        cookie: Option<&str>,
    ) -> Result<Recording, Rejection> {
        if !transfer::is_safe_record_id(rid) || !transfer::is_safe_record_id(format) {
            return Err(warp::reject::custom(NotFound));
        }
        let stored = self
            .store
            .recording(rid)
            .ok()
            .flatten()
            .filter(|s| s.published && !s.deleted)
            .ok_or_else(|| warp::reject::custom(NotFound))?;
        if stored.protected {
            let name = cookie_name(format, rid);
            let ok = cookie.into_iter().flat_map(|c| c.split(';')).any(|pair| {
                pair.trim().split_once('=').is_some_and(|(k, v)| {
                    k == name
                        && transfer::verify_playback_cookie(
                            &self.config.secret,
                            rid,
                            format,
                            v,
                            now_secs(),
                        )
                })
            });
            if !ok {
                return Err(warp::reject::custom(NotFound));
            }
        }
        let recording =
            Recording::from_xml(&stored.xml).map_err(|_| warp::reject::custom(NotFound))?;
        if !recording.playback.iter().any(|p| p.format_type == format) {
            return Err(warp::reject::custom(NotFound));
        }
        Ok(recording)
    }
}

/// Consumes a one-time token, sets the recording's cookie and sends the browser to the player.
fn redeem(rid: String, format: String, raw_query: String, app: Playback) -> warp::reply::Response {
    let token = conflux_shared::Query::parse(&raw_query)
        .ok()
        .and_then(|q| q.get_trimmed("token"));
    let published = app
        .store
        .recording(&rid)
        .ok()
        .flatten()
        .is_some_and(|s| s.published && !s.deleted);
    let nonce = token.and_then(|t| {
        transfer::verify_playback_token(&app.config.secret, &rid, &format, &t, now_secs())
    });
    let fresh = match &nonce {
        Some(nonce) if published => app.store.consume_token(nonce).unwrap_or(false),
        _ => false,
    };
    if !fresh {
        tracing::warn!(record_id = %rid, "Playback token refused (missing, forged, expired or used).");
        return not_found();
    }
    let expires = now_secs() + COOKIE_SECS;
    let value = transfer::playback_cookie(&app.config.secret, &rid, &format, expires);
    let secure = if app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={value}; Path=/playback/{format}/{rid}; Max-Age={COOKIE_SECS}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(&format, &rid)
    );
    let mut reply =
        warp::reply::with_status(warp::reply(), StatusCode::TEMPORARY_REDIRECT).into_response();
    let headers = reply.headers_mut();
    if let (Ok(location), Ok(cookie)) =
        (format!("/playback/{format}/{rid}/").parse(), cookie.parse())
    {
        headers.insert("location", location);
        headers.insert("set-cookie", cookie);
    }
    reply
}

async fn page(
    format: String,
    rid: String,
    cookie: Option<String>,
    app: Playback,
) -> Result<warp::reply::Response, Rejection> {
    let recording = app.allowed(&format, &rid, cookie.as_deref())?;
    let folder = app
        .config
        .data_dir
        .join("published")
        .join(&format)
        .join(&rid);
    let media = |path: &str| folder.join(path).is_file().then(|| path.to_owned());
    let started = time::OffsetDateTime::from_unix_timestamp(
        i64::try_from(recording.start_time / 1000).unwrap_or(0),
    )
    .ok()
    .and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default();
    let length = recording
        .playback
        .iter()
        .find(|p| p.format_type == format)
        .map_or(0, |p| p.length);
    let html = app
        .templates
        .render(
            "playback",
            &json!({
                "name": recording.name,
                "record_id": recording.record_id,
                "format": format,
                "started": started,
                "minutes": length,
                "slides": media("shapes.svg"),
                "video": media("video/webcams.webm").or_else(|| media("video/webcams.mp4")),
            }),
        )
        .map_err(|e| {
            tracing::error!(error = %e, "Could not render the player.");
            warp::reject::custom(NotFound)
        })?;
    Ok(warp::reply::html(html).into_response())
}
