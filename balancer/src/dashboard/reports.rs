//! Usage reports: one integration's month, day by day (meetings, unique meetings, peak
//! concurrent users, participant-minutes, recordings and their hours), as a page with a chart
//! and as CSV.

use std::sync::Arc;

use conflux_shared::Query;
use serde_json::json;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::Reply;

use super::{message, page};
use crate::state::AppState;
use conflux_store::usage::DayUsage;
use conflux_store::users::Session;
use conflux_store::{self as store, IntegrationId};

/// The selected integration and month, with the month's days.
struct Selection {
    integration: Option<Arc<store::Integration>>,
    integrations: Vec<Arc<store::Integration>>,
    month: String,
    days: Vec<String>,
}

fn select(state: &AppState, raw_query: &str) -> Result<Selection, String> {
    let query = Query::parse(raw_query).map_err(|_| "the query could not be read".to_string())?;
    let integrations = state.integrations.load().to_vec();
    let integration = match query.get("integration") {
        Some(id) => Some(
            integrations
                .iter()
                .find(|i| i.id.0.to_string() == id)
                .cloned()
                .ok_or_else(|| format!("no integration {id:?}"))?,
        ),
        None => integrations.first().cloned(),
    };
    let today = time::OffsetDateTime::now_utc().date();
    let month = query
        .get("month")
        .map(String::from)
        .unwrap_or_else(|| format!("{:04}-{:02}", today.year(), u8::from(today.month())));
    let days = days_of(&month).ok_or_else(|| format!("{month:?} is not a month (YYYY-MM)"))?;
    Ok(Selection {
        integration,
        integrations,
        month,
        days,
    })
}

/// Every day (YYYY-MM-DD) of `month` (YYYY-MM).
fn days_of(month: &str) -> Option<Vec<String>> {
    let (year, m) = month.split_once('-')?;
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let mut day = time::Date::from_calendar_date(year.parse().ok()?, month, 1).ok()?;
    let mut days = Vec::new();
    while day.month() == month {
        days.push(day.to_string());
        day = day.next_day()?;
    }
    Some(days)
}

async fn load(state: &AppState, id: IntegrationId, days: Vec<String>) -> Option<Vec<DayUsage>> {
    state.store.usage(id, days).await.ok()
}

pub async fn report_page(
    state: &Arc<AppState>,
    session: Option<&Session>,
    raw_query: &str,
) -> Response {
    let selection = match select(state, raw_query) {
        Ok(s) => s,
        Err(why) => return message(state, StatusCode::BAD_REQUEST, "Bad report request", &why),
    };
    let Some(integration) = &selection.integration else {
        return page(
            state,
            "report",
            session,
            json!({"title": "Usage", "integrations": [], "month": selection.month, "report": null, "integration": 0}),
        );
    };
    let Some(rows) = load(state, integration.id, selection.days.clone()).await else {
        return message(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "The report could not be read.",
        );
    };
    let shown: Vec<_> = rows
        .iter()
        .map(|d| {
            json!({
                "day": d.day, "meetings": d.meetings, "unique_meetings": d.unique_meetings,
                "peak_users": d.peak_users, "minutes": format!("{:.0}", d.participant_minutes),
                "recordings": d.recordings, "hours": format!("{:.1}", d.recording_hours),
            })
        })
        .collect();
    let total = json!({
        "meetings": rows.iter().map(|d| d.meetings).sum::<u32>(),
        "unique_meetings": rows.iter().map(|d| d.unique_meetings).sum::<u32>(),
        "peak_users": rows.iter().map(|d| d.peak_users).max().unwrap_or(0),
        "minutes": format!("{:.0}", rows.iter().map(|d| d.participant_minutes).sum::<f64>()),
        "recordings": rows.iter().map(|d| d.recordings).sum::<u32>(),
        "hours": format!("{:.1}", rows.iter().map(|d| d.recording_hours).sum::<f64>()),
    });
    let integrations: Vec<_> = selection
        .integrations
        .iter()
        .map(|i| json!({"id": i.id.0, "name": i.name, "selected": i.id == integration.id}))
        .collect();
    page(
        state,
        "report",
        session,
        json!({
            "title": format!("Usage of {}", integration.name),
            "integrations": integrations,
            "integration": integration.id.0,
            "month": selection.month,
            "report": shown,
            "total": total,
        }),
    )
}

/// The report as JSON (`/api/v1/reports?integration=ID&month=YYYY-MM`).
pub async fn report_json(state: &Arc<AppState>, raw_query: &str) -> Response {
    let selection = match select(state, raw_query) {
        Ok(s) => s,
        Err(why) => return super::admin_api::error(StatusCode::BAD_REQUEST, &why),
    };
    let Some(integration) = selection.integration else {
        return super::admin_api::error(StatusCode::NOT_FOUND, "no integration");
    };
    match load(state, integration.id, selection.days).await {
        Some(days) => warp::reply::json(&json!({
            "integration": {"id": integration.id.0, "name": integration.name},
            "month": selection.month,
            "days": days,
        }))
        .into_response(),
        None => super::admin_api::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the report could not be read",
        ),
    }
}

pub async fn report_csv(state: &Arc<AppState>, raw_query: &str) -> Response {
    let selection = match select(state, raw_query) {
        Ok(s) => s,
        Err(why) => return warp::reply::with_status(why, StatusCode::BAD_REQUEST).into_response(),
    };
    let Some(integration) = selection.integration else {
        return warp::reply::with_status("no integration", StatusCode::NOT_FOUND).into_response();
    };
    let Some(rows) = load(state, integration.id, selection.days).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut csv = String::from(
        "integration,day,meetings,unique_meetings,peak_users,participant_minutes,recordings,recording_hours\r\n",
    );
    for d in &rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{:.1},{},{:.2}\r\n",
            csv_field(&integration.name),
            d.day,
            d.meetings,
            d.unique_meetings,
            d.peak_users,
            d.participant_minutes,
            d.recordings,
            d.recording_hours
        ));
    }
    let file = format!(
        "attachment; filename=\"conflux-usage-{}-{}.csv\"",
        integration.id.0, selection.month
    );
    let reply = warp::reply::with_header(csv, header::CONTENT_TYPE, "text/csv; charset=utf-8");
    warp::reply::with_header(reply, header::CONTENT_DISPOSITION, file).into_response()
}

/// RFC 4180 quoting, and no formula injection when opened in a spreadsheet.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_csv_fields() {
        assert_eq!(days_of("2024-02").unwrap().len(), 29);
        assert_eq!(days_of("2026-11").unwrap().first().unwrap(), "2026-11-01");
        assert!(days_of("2026-13").is_none() && days_of("soon").is_none());
        assert_eq!(csv_field("Uni, \"A\""), "\"Uni, \"\"A\"\"\"");
        assert_eq!(csv_field("=HYPERLINK()"), "'=HYPERLINK()");
    }
}
