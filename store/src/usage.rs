//! Usage reports in the store: what each integration used per UTC day — meetings (created),
//! unique meetings, peak concurrent users, participant-minutes, recordings and their hours.

use std::collections::{BTreeMap, HashMap};

use crate::sql::{params, Db};
use serde::Serialize;

use super::{IntegrationId, Store, StoreError};

/// One day of one integration's usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayUsage {
    pub day: String,
    pub meetings: u32,
    pub unique_meetings: u32,
    pub peak_users: u32,
    pub participant_minutes: f64,
    pub recordings: u32,
    pub recording_hours: f64,
}

/// Adds one poll's users per integration to `day`: `seconds` is the time the poll stands for.
pub(crate) fn record(
    conn: &Db<'_>,
    day: &str,
    users: &HashMap<IntegrationId, u32>,
    seconds: f64,
) -> Result<(), StoreError> {
    for (integration, n) in users {
        conn.execute(
            "INSERT INTO usage_daily (integration_id, day, participant_seconds, peak_users)
             SELECT CAST(?1 AS BIGINT), ?2, CAST(?3 AS DOUBLE PRECISION), CAST(?4 AS BIGINT)
             WHERE EXISTS (SELECT 1 FROM integrations WHERE id = ?1)
             ON CONFLICT (integration_id, day) DO UPDATE SET
               participant_seconds = usage_daily.participant_seconds + excluded.participant_seconds,
               peak_users = CASE WHEN excluded.peak_users > usage_daily.peak_users
                            THEN excluded.peak_users ELSE usage_daily.peak_users END",
            params![integration.0, day, f64::from(*n) * seconds, n],
        )?;
    }
    Ok(())
}

/// The integration's usage for the days `from..=to` (YYYY-MM-DD), every day listed.
pub(crate) fn report(
    conn: &Db<'_>,
    integration: IntegrationId,
    days: &[String],
) -> Result<Vec<DayUsage>, StoreError> {
    let (Some(from), Some(to)) = (days.first(), days.last()) else {
        return Ok(Vec::new());
    };
    let mut out: BTreeMap<String, DayUsage> = days
        .iter()
        .map(|d| {
            (
                d.clone(),
                DayUsage {
                    day: d.clone(),
                    ..DayUsage::default()
                },
            )
        })
        .collect();
    let created_day = conn.day_of("at");
    let rows = conn.query(
        &format!(
            "SELECT {created_day} AS d, count(*), count(DISTINCT meeting_id)
         FROM events WHERE kind = 'meeting_created' AND integration_id = ?1
           AND {created_day} BETWEEN ?2 AND ?3 GROUP BY d"
        ),
        params![integration.0, from, to],
        |r| Ok((r.get::<String>(0)?, r.get::<u32>(1)?, r.get::<u32>(2)?)),
    )?;
    for row in rows {
        let (day, meetings, unique) = row;
        if let Some(u) = out.get_mut(&day) {
            u.meetings = meetings;
            u.unique_meetings = unique;
        }
    }
    let rows = conn.query(
        "SELECT day, participant_seconds, peak_users FROM usage_daily
         WHERE integration_id = ?1 AND day BETWEEN ?2 AND ?3",
        params![integration.0, from, to],
        |r| Ok((r.get::<String>(0)?, r.get::<f64>(1)?, r.get::<u32>(2)?)),
    )?;
    for row in rows {
        let (day, seconds, peak) = row;
        if let Some(u) = out.get_mut(&day) {
            u.participant_minutes = seconds / 60.0;
            u.peak_users = peak;
        }
    }
    let started_day = conn.day_of("start_time");
    let rows = conn.query(
        &format!(
            "SELECT {started_day}, xml FROM recordings
         WHERE integration_id = ?1 AND state != 'deleted'
           AND {started_day} BETWEEN ?2 AND ?3"
        ),
        params![integration.0, from, to],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
    )?;
    for row in rows {
        let (day, xml) = row;
        if let Some(u) = out.get_mut(&day) {
            u.recordings += 1;
            u.recording_hours += recording_hours(&xml);
        }
    }
    Ok(out.into_values().collect())
}

/// Hours between a stored recording's startTime and endTime.
fn recording_hours(xml: &str) -> f64 {
    let Ok(element) = conflux_shared::Element::parse(xml) else {
        return 0.0;
    };
    let ms = |name: &str| {
        element
            .child_text(name)
            .and_then(|t| t.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    ((ms("endTime") - ms("startTime")) / 3_600_000.0).max(0.0)
}

impl Store {
    /// Adds one poll's users per integration to `day` (see [`record`]).
    pub async fn record_usage(
        &self,
        day: String,
        users: HashMap<IntegrationId, u32>,
        seconds: f64,
    ) -> Result<(), StoreError> {
        self.run(move |c| record(c, &day, &users, seconds)).await
    }

    /// The integration's usage for `days` (see [`report`]).
    pub async fn usage(
        &self,
        integration: IntegrationId,
        days: Vec<String>,
    ) -> Result<Vec<DayUsage>, StoreError> {
        self.read(move |c| report(c, integration, &days)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewIntegration;
    use conflux_shared::Secret;

    #[test]
    fn polls_add_up_to_minutes_and_peaks() {
        for store in crate::testing::stores() {
            let id = store
                .blocking(|c| {
                    crate::integrations::insert(
                        c,
                        &NewIntegration {
                            name: "uni".into(),
                            secret: Secret("secret-0123".into()),
                        },
                    )
                })
                .unwrap()
                .id;
            let day = "2026-11-23".to_string();
            for users in [10, 30, 20] {
                let polled = HashMap::from([(id, users), (IntegrationId(999), 5)]);
                store.blocking(|c| record(c, &day, &polled, 60.0)).unwrap();
            }
            let days = vec!["2026-11-22".to_string(), day.clone()];
            let report = store.blocking(|c| report(c, id, &days)).unwrap();
            assert_eq!(report.len(), 2);
            assert_eq!(
                report[0],
                DayUsage {
                    day: "2026-11-22".into(),
                    ..DayUsage::default()
                }
            );
            assert_eq!(report[1].participant_minutes, 60.0);
            assert_eq!(report[1].peak_users, 30);
        }
    }

    #[test]
    fn recording_hours_from_the_stored_element() {
        let xml = "<recording><startTime>1000</startTime><endTime>5401000</endTime></recording>";
        assert_eq!(recording_hours(xml), 1.5);
        assert_eq!(recording_hours("<broken"), 0.0);
    }
}
