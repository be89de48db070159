//! The node's BBB counts, from its own API: a signed `getMeetings` (meetings, users, users
//! with a microphone, listen-only users, users with video) and the index (API version).

use conflux_shared::report::BbbCounts;
use conflux_shared::response::Body;
use conflux_shared::{Algorithm, Response, SignedUrl};

/// Reads the counts; the error says which call failed and why.
pub async fn counts(
    client: &reqwest::Client,
    api_url: &str,
    secret: &str,
) -> Result<BbbCounts, String> {
    let index = call(client, api_url).await?;
    let version = index.field("version").unwrap_or_default().trim().to_owned();
    let url = SignedUrl::new(api_url, "getMeetings").sign(secret, Algorithm::Sha256);
    let answer = call(client, &url).await?;
    if !answer.is_success() {
        let key = answer.message_key.unwrap_or_default();
        // BBB answers an empty list as a FAILED noMeetings on old versions.
        if key != "noMeetings" {
            return Err(format!(
                "getMeetings: {key} {}",
                answer.message.unwrap_or_default()
            ));
        }
    }
    let meetings = match answer.body {
        Body::Meetings(list) => list,
        _ => Vec::new(),
    };
    let running = meetings.iter().filter(|m| m.end_time == 0);
    Ok(running.fold(
        BbbCounts {
            version,
            ..BbbCounts::default()
        },
        |mut c, m| {
            c.meetings += 1;
            c.users += m.participant_count;
            c.voice += m.voice_participant_count;
            c.listeners += m.listener_count;
            c.video += m.video_count;
            c
        },
    ))
}

async fn call(client: &reqwest::Client, url: &str) -> Result<Response, String> {
    let shown = url.split('?').next().unwrap_or(url);
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{shown}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{shown}: HTTP {}", response.status()));
    }
    let text = response.text().await.map_err(|e| format!("{shown}: {e}"))?;
    Response::from_xml(&text).map_err(|e| format!("{shown}: {e}"))
}
