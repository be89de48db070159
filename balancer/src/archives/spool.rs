//! Scalelite-style import for nodes without the agent: a node's post-publish script drops
//! `<recordID>.tar` (entries `<format>/<recordID>/...`, one `metadata.xml` per format) into the
//! spool folder. Each tarball is encrypted for its institution's recording server exactly as
//! the agent would, queued for that recorder, and deleted: the plaintext does not stay. A
//! tarball that cannot be imported (no metadata, unknown owner, owner without a recorder) moves
//! to `<spool>/failed/` with the reason logged.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use conflux_shared::crypto::{archive, RecorderKey};
use conflux_shared::response::Recording;
use conflux_shared::transfer;

use crate::state::AppState;
use conflux_store::IntegrationId;

/// metadata.xml files are small; a bigger one is not BBB's.
const MAX_METADATA: u64 = 1 << 20;

pub fn dir(state: &AppState) -> PathBuf {
    state
        .config
        .recordings
        .spool_dir
        .clone()
        .unwrap_or_else(|| state.config.data_dir.join("spool"))
}

/// Imports every `*.tar` in the spool folder.
pub async fn import_all(state: &Arc<AppState>) {
    let spool = dir(state);
    let Ok(entries) = std::fs::read_dir(&spool) else {
        return;
    };
    let mut tarballs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "tar"))
        .collect();
    tarballs.sort();
    for tarball in tarballs {
        if let Err(why) = import(state, &tarball).await {
            tracing::warn!(tarball = %tarball.display(), %why, "Spool import failed; moved to failed/.");
            let failed = spool.join("failed");
            let moved = std::fs::create_dir_all(&failed).and_then(|()| {
                std::fs::rename(
                    &tarball,
                    failed.join(tarball.file_name().unwrap_or_default()),
                )
            });
            if let Err(e) = moved {
                tracing::error!(error = %e, "Could not move a failed tarball aside.");
            }
        }
    }
}

async fn import(state: &Arc<AppState>, tarball: &Path) -> Result<(), String> {
    let path = tarball.to_owned();
    let recording = tokio::task::spawn_blocking(move || read_metadata(&path))
        .await
        .map_err(|e| e.to_string())??;
    if !transfer::is_safe_record_id(&recording.record_id) {
        return Err(format!("bad recording id {:?}", recording.record_id));
    }
    let owner = owner(state, &recording).await?;
    let integration = state
        .integrations
        .load()
        .iter()
        .find(|i| i.id == owner)
        .cloned()
        .ok_or("the owning integration is gone")?;
    let recorder = integration.recorder.clone().ok_or_else(|| {
        format!(
            "integration {} has no recording server to encrypt for",
            integration.name
        )
    })?;
    let key = RecorderKey::from_pem(&recorder.key).map_err(|e| e.to_string())?;
    let temp = super::incoming(&state.config, &recording.record_id);
    let manifest = archive::Manifest {
        record_id: recording.record_id.clone(),
        meeting_id: recording.meeting_id.clone(),
        institution: integration.name.clone(),
        size: 0,
        sha256: String::new(),
    };
    let (source, out) = (tarball.to_owned(), temp.clone());
    let encrypted = tokio::task::spawn_blocking(move || encrypt(&source, &out, &key, manifest))
        .await
        .map_err(|e| e.to_string())?;
    let (size, sha256) = match encrypted {
        Ok(done) => done,
        Err(e) => {
            super::remove(&temp);
            return Err(e);
        }
    };
    let arrival = super::agent::arrival(state, &recording, owner, None, size, sha256);
    let outcome = super::agent::store_arrival(state, arrival, &temp).await?;
    std::fs::remove_file(tarball).map_err(|e| format!("could not remove the tarball: {e}"))?;
    tracing::info!(record_id = %recording.record_id, integration = %integration.name, ?outcome, "Spool tarball encrypted and queued.");
    Ok(())
}

/// The first `<format>/<recordID>/metadata.xml` of a tarball.
fn read_metadata(tarball: &Path) -> Result<Recording, String> {
    let file = std::fs::File::open(tarball).map_err(|e| e.to_string())?;
    let mut tar = tar::Archive::new(file);
    for entry in tar.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 3 && path.ends_with("metadata.xml") {
            let mut text = String::new();
            entry
                .take(MAX_METADATA)
                .read_to_string(&mut text)
                .map_err(|e| e.to_string())?;
            return conflux_shared::metadata::parse(&text)
                .ok_or_else(|| format!("{} is not BBB's metadata.xml", path.display()));
        }
    }
    Err("no <format>/<recordID>/metadata.xml in the tarball".into())
}

/// The integration named by the balancer's metadata, else the latest creator of the meeting.
async fn owner(state: &AppState, recording: &Recording) -> Result<IntegrationId, String> {
    if let Some(id) = recording
        .meta(transfer::META_INSTITUTION)
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        return Ok(IntegrationId(id));
    }
    let meeting = recording.meeting_id.clone();
    state
        .store
        .owner_of(&meeting, None)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no integration created meeting {}", recording.meeting_id))
}

/// Encrypts `source` into `out`; the ciphertext's size and sha256.
fn encrypt(
    source: &Path,
    out: &Path,
    key: &RecorderKey,
    mut manifest: archive::Manifest,
) -> Result<(u64, String), String> {
    let io = |e: std::io::Error| e.to_string();
    let (size, sha256) = archive::digest(std::fs::File::open(source).map_err(io)?).map_err(io)?;
    manifest.size = size;
    manifest.sha256 = sha256;
    let plain = std::io::BufReader::new(std::fs::File::open(source).map_err(io)?);
    let file = std::io::BufWriter::new(std::fs::File::create(out).map_err(io)?);
    let mut sealed = archive::Digesting::new(file);
    archive::encrypt(plain, &mut sealed, key, &manifest, archive::CHUNK)
        .map_err(|e| e.to_string())?;
    let (file, len, sha256) = sealed.finish();
    file.into_inner()
        .map_err(|e| e.to_string())?
        .sync_all()
        .map_err(io)?;
    Ok((len, sha256))
}
