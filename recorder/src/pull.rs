//! The pull loop: read the balancer's feed for this institution, fetch new archives (resuming
//! interrupted downloads with Range), verify their sha256, decrypt with the private key, unpack
//! safely, index the recording, move it into the playback folders and tell the balancer. An
//! archive that is truncated, tampered with or encrypted for another key is moved to
//! `<data>/rejected/` for inspection and reported as failed.
//!
//! Folders under the data folder: `incoming/` (downloads, `.part` until verified), `staging/`
//! (unpacking), `published/<format>/<recordID>/` (served), `rejected/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use conflux_shared::crypto::archive;
use conflux_shared::response::{PlaybackFormat, Recording};
use conflux_shared::transfer::{self, Change, Feed, FeedEntry};
use conflux_shared::{checksum, Algorithm};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::config::Config;
use crate::store::{now_secs, Pending, Store};
use crate::unpack::{self, Limits};

pub struct Puller {
    pub config: Arc<Config>,
    pub store: Store,
    pub client: reqwest::Client,
    pub private_key: Arc<String>,
}

/// Why an archive was not processed this round.
#[derive(Debug)]
enum Failure {
    /// Try again next round (network, balancer down).
    Retry(String),
    /// The archive is bad: keep it aside and report it.
    Reject(String),
}

impl Puller {
    pub fn dir(&self, name: &str) -> PathBuf {
        self.config.data_dir.join(name)
    }

    /// A signed balancer URL for `call` on `path` with `extra` parameters.
    fn url(&self, path: &str, call: &str, extra: &str) -> String {
        let mut query = format!("ts={}", now_secs());
        if !extra.is_empty() {
            query = format!("{extra}&{query}");
        }
        let sum = checksum::compute(Algorithm::Sha256, call, &query, &self.config.secret);
        format!("{}{path}?{query}&checksum={sum}", self.config.balancer_url)
    }

    /// One round: the feed, then every pending archive, then unreported recordings.
    pub async fn round(&self) -> anyhow::Result<()> {
        loop {
            let since = self.store.position()?;
            let url = self.url(
                transfer::RECORDER_FEED_PATH,
                transfer::RECORDER_FEED_CALL,
                &format!("since={since}"),
            );
            let response = self.client.get(url).send().await?;
            let status = response.status();
            if !status.is_success() {
                anyhow::bail!(
                    "feed refused ({status}): {}",
                    response.text().await.unwrap_or_default()
                );
            }
            let feed: Feed = response.json().await?;
            if feed.entries.is_empty() {
                break;
            }
            for entry in &feed.entries {
                self.apply(entry)?;
            }
        }
        for pending in self.store.pending()? {
            match self.process(&pending).await {
                Ok(()) => {}
                Err(Failure::Retry(why)) => {
                    tracing::warn!(record_id = %pending.record_id, %why, "Archive not fetched yet; will retry.");
                }
                Err(Failure::Reject(why)) => self.reject(&pending, &why).await,
            }
        }
        for stored in self.store.unreported()? {
            self.report_done(&stored.record_id, &stored.xml).await;
        }
        Ok(())
    }

    /// Applies one feed entry and advances the position, in one transaction.
    fn apply(&self, entry: &FeedEntry) -> anyhow::Result<()> {
        let rid = &entry.record_id;
        if !transfer::is_safe_record_id(rid) {
            tracing::warn!(record_id = %rid, "Feed entry with an unsafe id skipped.");
            return Ok(self.store.skip(entry.seq)?);
        }
        if matches!(entry.change, Change::Delete) {
            for format in self.formats_of(rid) {
                std::fs::remove_dir_all(self.dir("published").join(&format).join(rid)).ok();
            }
            remove(&self.dir("incoming").join(format!("{rid}.part")));
        }
        let changed_xml = match &entry.change {
            Change::Update { meta } => self.store.recording(rid)?.and_then(|s| {
                edit_xml(&s.xml, |r| {
                    for (k, v) in meta {
                        r.metadata.retain(|(key, _)| !key.eq_ignore_ascii_case(k));
                        if !v.is_empty() {
                            r.metadata.push((k.clone(), v.clone()));
                        }
                    }
                })
            }),
            Change::Publish { published } => self.store.recording(rid)?.and_then(|s| {
                edit_xml(&s.xml, |r| {
                    r.published = *published;
                    r.state = if *published {
                        "published"
                    } else {
                        "unpublished"
                    }
                    .into();
                })
            }),
            _ => None,
        };
        self.store
            .apply(entry.seq, rid, &entry.change, changed_xml.as_deref())?;
        Ok(())
    }

    fn formats_of(&self, rid: &str) -> Vec<String> {
        std::fs::read_dir(self.dir("published"))
            .map(|d| {
                d.flatten()
                    .filter(|f| f.path().join(rid).is_dir())
                    .map(|f| f.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Downloads (resuming), verifies, decrypts, unpacks and indexes one archive.
    async fn process(&self, p: &Pending) -> Result<(), Failure> {
        let incoming = self.dir("incoming");
        std::fs::create_dir_all(&incoming).map_err(|e| Failure::Retry(e.to_string()))?;
        let part = incoming.join(format!("{}.part", p.record_id));
        self.download(p, &part).await?;
        let started = std::time::Instant::now();
        let (config, key, pending, part_path) = (
            self.config.clone(),
            self.private_key.clone(),
            p.clone(),
            part.clone(),
        );
        let recording =
            tokio::task::spawn_blocking(move || open(&config, &key, &pending, &part_path))
                .await
                .map_err(|e| Failure::Retry(e.to_string()))??;
        let xml = recording.to_element().to_xml();
        self.store
            .processed(p, &xml)
            .map_err(|e| Failure::Retry(e.to_string()))?;
        remove(&part);
        tracing::info!(record_id = %p.record_id, took = ?started.elapsed(), "Recording decrypted, unpacked and indexed.");
        self.report_done(&p.record_id, &xml).await;
        Ok(())
    }

    async fn download(&self, p: &Pending, part: &Path) -> Result<(), Failure> {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if have >= p.size {
            return Ok(());
        }
        let url = self.url(
            &format!("{}/{}", transfer::RECORDER_ARCHIVES_PATH, p.record_id),
            transfer::RECORDER_ARCHIVE_CALL,
            "",
        );
        let mut request = self.client.get(url);
        if have > 0 {
            request = request.header("range", format!("bytes={have}-"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let status = response.status().as_u16();
        let append = match status {
            206 => true,
            200 => false,
            // Nothing more to read: the balancer's copy is shorter than announced.
            416 => return Err(Failure::Reject("the archive is truncated".into())),
            404 => {
                return Err(Failure::Retry(format!(
                    "not available ({})",
                    response.text().await.unwrap_or_default()
                )))
            }
            _ => return Err(Failure::Retry(format!("download answered {status}"))),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(part)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let mut body = response.bytes_stream();
        let mut got = if append { have } else { 0 };
        while let Some(chunk) = body.next().await {
            // A broken transfer keeps what arrived; the next round resumes from there.
            let chunk = chunk
                .map_err(|e| Failure::Retry(format!("download interrupted at {got} bytes: {e}")))?;
            got += chunk.len() as u64;
            if got > p.size {
                return Err(Failure::Reject(
                    "the archive is larger than announced".into(),
                ));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| Failure::Retry(e.to_string()))?;
        }
        file.sync_all()
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        if got < p.size {
            return Err(Failure::Reject(format!(
                "the archive is truncated ({got} of {} bytes)",
                p.size
            )));
        }
        Ok(())
    }

    async fn reject(&self, p: &Pending, why: &str) {
        tracing::error!(record_id = %p.record_id, %why, "Archive rejected; kept for inspection.");
        let rejected = self.dir("rejected");
        let part = self.dir("incoming").join(format!("{}.part", p.record_id));
        if std::fs::create_dir_all(&rejected).is_ok() && part.exists() {
            if let Err(e) = std::fs::rename(&part, rejected.join(format!("{}.cfx", p.record_id))) {
                tracing::error!(error = %e, "Could not keep the rejected archive.");
            }
        }
        let url = self.url(
            &format!(
                "{}/{}/failed",
                transfer::RECORDER_ARCHIVES_PATH,
                p.record_id
            ),
            transfer::RECORDER_FAILED_CALL,
            "",
        );
        match self.client.post(url).body(why.to_owned()).send().await {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => {
                if let Err(e) = self.store.drop_pending(&p.record_id) {
                    tracing::error!(error = %e, "Could not drop a rejected archive from the index.");
                }
            }
            Ok(r) => tracing::warn!(
                status = r.status().as_u16(),
                "The balancer did not take the rejection; will retry."
            ),
            Err(e) => tracing::warn!(error = %e, "Could not report the rejection; will retry."),
        }
    }

    async fn report_done(&self, record_id: &str, xml: &str) {
        let url = self.url(
            &format!("{}/{record_id}/done", transfer::RECORDER_ARCHIVES_PATH),
            transfer::RECORDER_DONE_CALL,
            "",
        );
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/xml")
            .body(xml.to_owned())
            .send()
            .await;
        match sent {
            // 410: deleted meanwhile (the feed brings the deletion).
            Ok(r) if r.status().is_success() || r.status().as_u16() == 410 => {
                if let Err(e) = self.store.set_reported(record_id) {
                    tracing::error!(error = %e, "Could not mark a recording reported.");
                }
            }
            Ok(r) => tracing::warn!(
                record_id,
                status = r.status().as_u16(),
                "The balancer did not take the report; will retry."
            ),
            Err(e) => {
                tracing::warn!(record_id, error = %e, "Could not report a processed recording; will retry.")
            }
        }
    }
}

fn edit_xml(xml: &str, edit: impl FnOnce(&mut Recording)) -> Option<String> {
    let mut r = Recording::from_xml(xml).ok()?;
    edit(&mut r);
    Some(r.to_element().to_xml())
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::error!(path = %path.display(), error = %e, "Could not remove a file.");
        }
    }
}

/// Verifies, decrypts and unpacks a downloaded archive into the playback folders; the
/// recording as the balancer will list it.
fn open(
    config: &Config,
    private_key: &str,
    p: &Pending,
    part: &Path,
) -> Result<Recording, Failure> {
    let retry = |e: std::io::Error| Failure::Retry(e.to_string());
    let (_, sha256) = archive::digest(std::fs::File::open(part).map_err(retry)?).map_err(retry)?;
    if sha256 != p.sha256 {
        return Err(Failure::Reject(format!(
            "sha256 mismatch: announced {}, received {sha256}",
            p.sha256
        )));
    }
    let staging = config.data_dir.join("staging").join(&p.record_id);
    let zip_path = config
        .data_dir
        .join("staging")
        .join(format!("{}.plain", p.record_id));
    std::fs::remove_dir_all(&staging).ok();
    std::fs::create_dir_all(config.data_dir.join("staging")).map_err(retry)?;
    let result = (|| {
        let mut plain = std::io::BufWriter::new(std::fs::File::create(&zip_path).map_err(retry)?);
        let manifest = archive::decrypt(
            std::io::BufReader::new(std::fs::File::open(part).map_err(retry)?),
            &mut plain,
            private_key,
        )
        .map_err(|e| match e {
            archive::ArchiveError::Io(e) => Failure::Retry(e.to_string()),
            archive::ArchiveError::PrivateKey(e) => Failure::Retry(format!("private key: {e}")),
            other => Failure::Reject(other.to_string()),
        })?;
        plain.into_inner().map_err(|e| retry(e.into_error()))?;
        if manifest.record_id != p.record_id {
            return Err(Failure::Reject(format!(
                "the archive holds recording {}, not {}",
                manifest.record_id, p.record_id
            )));
        }
        let limits = Limits {
            entry: config.max_entry,
            total: config.max_total,
        };
        let formats =
            unpack::unpack(&zip_path, &staging, &p.record_id, limits).map_err(|e| match e {
                unpack::UnpackError::Io(e) => Failure::Retry(e.to_string()),
                other => Failure::Reject(other.to_string()),
            })?;
        publish(config, p, &staging, &formats)
    })();
    std::fs::remove_file(&zip_path).ok();
    std::fs::remove_dir_all(&staging).ok();
    result
}

/// The format's thumbnails as this server serves them: an image the node named
/// `https://node/<format>/<recordID>/<path>` whose `<path>` is in the unpacked `folder` is
/// listed under `<public_url>/playback/<format>/<recordID>/<path>`; the others are dropped.
fn served_thumbnails(format: &mut PlaybackFormat, folder: &Path, public_url: &str, rid: &str) {
    let marker = format!("/{}/{rid}/", format.format_type);
    let served = format!("{public_url}/playback/{}/{rid}/", format.format_type);
    format.retain_thumbnails(|url| {
        let Some((_, path)) = url.split_once(&marker) else {
            return false;
        };
        let safe = Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe || !folder.join(path).is_file() {
            return false;
        }
        *url = format!("{served}{path}");
        true
    });
}

/// Moves the unpacked formats into `published/` and builds the recording's listing.
fn publish(
    config: &Config,
    p: &Pending,
    staging: &Path,
    formats: &[String],
) -> Result<Recording, Failure> {
    let retry = |e: std::io::Error| Failure::Retry(e.to_string());
    let mut recording: Option<Recording> = None;
    let mut playback = Vec::new();
    for format in formats {
        let from = staging.join(format).join(&p.record_id);
        let xml = std::fs::read_to_string(from.join("metadata.xml")).map_err(retry)?;
        let Some(r) = conflux_shared::metadata::parse(&xml) else {
            return Err(Failure::Reject(format!(
                "{format}/metadata.xml is not BBB's metadata"
            )));
        };
        let mut listed = PlaybackFormat {
            format_type: format.clone(),
            url: format!("{}/playback/{format}/{}/", config.public_url, p.record_id),
            processing_time: r.playback.first().and_then(|f| f.processing_time),
            length: r.playback.first().map_or(0, |f| f.length),
            preview: r.playback.first().and_then(|f| f.preview.clone()),
            extra: Vec::new(),
        };
        served_thumbnails(&mut listed, &from, &config.public_url, &p.record_id);
        playback.push(listed);
        if recording.is_none() || format == "presentation" {
            recording = Some(r);
        }
        let to = config.data_dir.join("published").join(format);
        std::fs::create_dir_all(&to).map_err(retry)?;
        let target = to.join(&p.record_id);
        std::fs::remove_dir_all(&target).ok();
        std::fs::rename(&from, &target).map_err(retry)?;
    }
    let mut r = recording.ok_or_else(|| Failure::Reject("no format".into()))?;
    r.record_id = p.record_id.clone();
    r.published = p.published;
    r.state = if p.published {
        "published"
    } else {
        "unpublished"
    }
    .into();
    r.playback = playback;
    for (k, v) in &p.meta {
        r.metadata.retain(|(key, _)| !key.eq_ignore_ascii_case(k));
        if !v.is_empty() {
            r.metadata.push((k.clone(), v.clone()));
        }
    }
    Ok(r)
}
