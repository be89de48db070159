//! Recordings of the simulated node: the recording calls (getRecordings, publish, delete, update,
//! getRecordingTextTracks) and the BBB-style folders finished recordings are written to.
//!
//! A recording folder is `<recordings-dir>/<recordID>/` holding `metadata.xml` (BBB's format:
//! id, state, times, `<meeting>`, `<meta>`, `<playback>`) and some playback files. Folders are
//! written under a temporary name and renamed, so a watcher never sees half a recording.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use conflux_shared::response::{messages, Body, Recording, RecordingQuery};
use conflux_shared::Response;
use rand::RngCore;

use super::api::{xml_error, Answer, ApiRequest};
use super::Sim;

/// Calls answered by bbb-web's RecordingController (legacy checksum error text).
pub(crate) fn is_recording_call(call: &str) -> bool {
    matches!(
        call,
        "getRecordings"
            | "publishRecordings"
            | "deleteRecordings"
            | "updateRecordings"
            | "getRecordingTextTracks"
    )
}

pub(crate) fn get_recordings(sim: &Sim, req: &ApiRequest) -> Answer {
    let filters = match RecordingQuery::from_query(&req.params) {
        Ok(f) => f,
        Err(message) => return xml_error(message),
    };
    let found = filters.apply(sim.lock().recordings.values().cloned());
    let empty = found.is_empty();
    let response = Response::success(Body::Recordings(found));
    Answer::Xml(if empty {
        response.with_message(messages::NO_RECORDINGS)
    } else {
        response
    })
}

pub(crate) fn publish(sim: &Sim, req: &ApiRequest) -> Answer {
    let Some(ids) = record_ids(req) else {
        return xml_error(messages::MISSING_RECORD_ID);
    };
    let publish = match req.params.get_trimmed("publish").as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => return xml_error(messages::MISSING_PUBLISH),
    };
    modify(sim, &ids, ("published", &publish.to_string()), |r| {
        if r.state != "deleted" {
            r.published = publish;
            r.state = if publish { "published" } else { "unpublished" }.into();
        }
    })
}

pub(crate) fn delete(sim: &Sim, req: &ApiRequest) -> Answer {
    let Some(ids) = record_ids(req) else {
        return xml_error(messages::MISSING_RECORD_ID);
    };
    modify(sim, &ids, ("deleted", "true"), |r| {
        r.published = false;
        r.state = "deleted".into();
    })
}

pub(crate) fn update(sim: &Sim, req: &ApiRequest) -> Answer {
    let Some(ids) = record_ids(req) else {
        return xml_error(messages::MISSING_RECORD_ID);
    };
    let changes: Vec<(String, String)> = req
        .params
        .with_prefix("meta_")
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    modify(sim, &ids, ("updated", "true"), |r| {
        for (key, value) in &changes {
            r.metadata.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
            if !value.is_empty() {
                r.metadata.push((key.clone(), value.clone()));
            }
        }
    })
}

pub(crate) fn text_tracks(sim: &Sim, req: &ApiRequest) -> Answer {
    let json = |code: &str, key: &str, message: &str| {
        Answer::Json(
            serde_json::json!({"response": {"returncode": code, "messageKey": key, "message": message}}),
        )
    };
    let Some(id) = req.params.get_trimmed("recordID") else {
        return json("FAILED", "missingParameter", "You must specify a recordID.");
    };
    if !sim.lock().recordings.contains_key(&id) {
        return json("FAILED", "noRecordings", "No recording found");
    }
    Answer::Json(serde_json::json!({"response": {"returncode": "SUCCESS", "tracks": []}}))
}

fn record_ids(req: &ApiRequest) -> Option<Vec<String>> {
    let ids = req.params.list("recordID");
    (!ids.is_empty()).then_some(ids)
}

/// Applies `change` to every listed recording that exists and saves it; notFound when none does.
fn modify(
    sim: &Sim,
    ids: &[String],
    answer: (&str, &str),
    change: impl Fn(&mut Recording),
) -> Answer {
    let mut inner = sim.lock();
    let mut changed = Vec::new();
    for id in ids {
        if let Some(recording) = inner.recordings.get_mut(id) {
            change(recording);
            changed.push(recording.clone());
        }
    }
    drop(inner);
    if changed.is_empty() {
        return xml_error(messages::RECORDINGS_NOT_FOUND);
    }
    if let Some(dir) = &sim.config.recordings_dir {
        for recording in &changed {
            if let Err(e) = save_metadata(&dir.join(&recording.record_id), recording) {
                tracing::warn!(record_id = %recording.record_id, error = %e, "Could not save metadata.xml.");
            }
        }
    }
    Answer::Xml(Response::fields(&[answer]))
}

/// The slide thumbnail a recording's folder holds (BBB's
/// `presentation/<deck>/thumbnails/thumb-N.png`), listed as its preview.
pub(crate) const THUMBNAIL: &str =
    "presentation/d2d9a672040fbde2a47a10bf6c37b6a4b5ae187f-1718000000100/thumbnails/thumb-1.png";

/// A 1×1 PNG.
const PNG: [u8; 67] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// Writes a finished recording's folder (metadata.xml, a thumbnail and `size` bytes of media) and returns
/// its path.
pub(crate) fn write_folder(
    dir: &Path,
    recording: &Recording,
    size: usize,
) -> std::io::Result<PathBuf> {
    let final_path = dir.join(&recording.record_id);
    let tmp = dir.join(format!(".{}.partial", recording.record_id));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(tmp.join("video"))?;
    save_metadata(&tmp, recording)?;
    let thumbnail = tmp.join(THUMBNAIL);
    if let Some(folder) = thumbnail.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(thumbnail, PNG)?;
    std::fs::write(
        tmp.join("shapes.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1600\" height=\"900\"><rect width=\"1600\" height=\"900\" fill=\"white\"/></svg>\n",
    )?;
    let mut media = std::fs::File::create(tmp.join("video").join("webcams.webm"))?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        rand::rng().fill_bytes(&mut chunk[..n]);
        media.write_all(&chunk[..n])?;
        left -= n;
    }
    media.sync_all()?;
    if final_path.exists() {
        std::fs::remove_dir_all(&final_path)?;
    }
    std::fs::rename(&tmp, &final_path)?;
    Ok(final_path)
}

/// Reads every `<dir>/<recordID>/metadata.xml`; unreadable folders are logged and skipped.
pub(crate) fn load_all(dir: &Path) -> BTreeMap<String, Recording> {
    let mut recordings = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return recordings;
    };
    for entry in entries.flatten() {
        let path = entry.path().join("metadata.xml");
        let parsed = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| conflux_shared::metadata::parse(&text));
        match parsed {
            Some(recording) => {
                recordings.insert(recording.record_id.clone(), recording);
            }
            None if entry.file_name().to_string_lossy().starts_with('.') => {}
            None => {
                tracing::warn!(path = %path.display(), "Skipping a recording without a readable metadata.xml.")
            }
        }
    }
    recordings
}

fn save_metadata(folder: &Path, recording: &Recording) -> std::io::Result<()> {
    let tmp = folder.join("metadata.xml.tmp");
    std::fs::write(
        &tmp,
        conflux_shared::metadata::to_element(recording).to_xml(),
    )?;
    std::fs::rename(tmp, folder.join("metadata.xml"))
}
