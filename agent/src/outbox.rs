//! The recordings outbox (Mconf's recording architecture). Every interval the agent looks in
//! BBB's published folder (`<format>/<recordID>/metadata.xml`) for recordings the balancer
//! marked for an institution's recording server (`conflux-recorder` metadata: the key's
//! fingerprint). For each it:
//! 1. fetches that public key from the balancer (signed; checked against the fingerprint);
//! 2. packs every format folder of the recording into a zip (`<format>/<recordID>/...`, no
//!    links followed) and encrypts it with [`archive::encrypt`], streaming, into
//!    `<outbox>/<recordID>.cfx`; the zip is deleted as soon as the archive is complete;
//! 3. uploads the archive to the balancer (PUT, signed over its sha256 and the metadata);
//! 4. once the balancer lists it as settled (its recorder has it, or it was deleted), deletes
//!    the archive and BBB's published folders and tells the balancer. Until then both stay,
//!    so a balancer that lost its copy can be given it again.
//!
//! Progress lives in file names in the outbox (`.cfx`, `.sha256`, `.xml`, `.sent`), so a restart
//! resumes where it stopped and nothing is packed or hashed twice.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use conflux_shared::crypto::{archive, RecorderKey};
use conflux_shared::report;
use conflux_shared::response::Recording;
use conflux_shared::transfer::{self, EMPTY_SHA256};
use tokio::sync::watch;

use crate::config::Config;
use crate::node_key::NodeKey;

/// Runs the outbox until the runtime stops; `key` carries the current enrolment.
pub async fn run(config: Config, mut key: watch::Receiver<Option<NodeKey>>) {
    let client = match reqwest::Client::builder()
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "Outbox: no HTTP client."),
    };
    let mut keys: HashMap<String, RecorderKey> = HashMap::new();
    let mut tick = tokio::time::interval(config.recordings_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(node) = key.borrow_and_update().clone() else {
            continue;
        };
        let outbox = Outbox {
            config: &config,
            client: &client,
            node: &node,
        };
        if let Err(e) = outbox.round(&mut keys).await {
            tracing::warn!(error = %e, "Outbox round failed; will retry.");
        }
    }
}

struct Outbox<'a> {
    config: &'a Config,
    client: &'a reqwest::Client,
    node: &'a NodeKey,
}

/// A published recording found on disk.
struct Found {
    recording: Recording,
    metadata_xml: String,
    /// `(format, folder)` pairs.
    formats: Vec<(String, PathBuf)>,
}

impl Outbox<'_> {
    async fn round(&self, keys: &mut HashMap<String, RecorderKey>) -> anyhow::Result<()> {
        let outbox = &self.config.outbox_dir;
        tokio::fs::create_dir_all(outbox).await?;
        // The folder walks and file reads run on the blocking pool: this runtime has one
        // thread, which also sends the reports.
        let published = self.config.published_dir.clone();
        for found in tokio::task::spawn_blocking(move || find(&published)).await? {
            let rid = found.recording.record_id.clone();
            if exists(outbox.join(format!("{rid}.cfx"))).await
                || exists(outbox.join(format!("{rid}.sent"))).await
            {
                continue;
            }
            let Some(fingerprint) = found
                .recording
                .meta(transfer::META_RECORDER)
                .map(str::to_owned)
            else {
                continue;
            };
            if !keys.contains_key(&fingerprint) {
                match self.recorder_key(&fingerprint).await {
                    Ok(key) => {
                        keys.insert(fingerprint.clone(), key);
                    }
                    Err(e) => {
                        tracing::warn!(record_id = %rid, error = %e, "Outbox: cannot get the recorder's key.");
                        continue;
                    }
                }
            }
            let key = keys[&fingerprint].clone();
            let dir = outbox.clone();
            let started = std::time::Instant::now();
            let packed = tokio::task::spawn_blocking(move || pack(&dir, &found, &key)).await?;
            match packed {
                Ok(size) => {
                    tracing::info!(record_id = %rid, size, took = ?started.elapsed(), "Recording packed and encrypted.")
                }
                Err(e) => {
                    tracing::error!(record_id = %rid, error = %e, "Outbox: could not pack the recording.")
                }
            }
        }
        self.upload_all().await;
        self.settle().await
    }

    async fn recorder_key(&self, fingerprint: &str) -> anyhow::Result<RecorderKey> {
        let path = format!("{}/{fingerprint}", transfer::AGENT_KEYS_PATH);
        let response = self
            .signed(reqwest::Method::GET, &path, EMPTY_SHA256)
            .timeout(self.config.timeout)
            .send()
            .await?
            .error_for_status()?;
        let key = RecorderKey::from_pem(&response.text().await?)?;
        anyhow::ensure!(
            key.fingerprint == fingerprint,
            "the balancer sent key {} for fingerprint {fingerprint}",
            key.fingerprint
        );
        Ok(key)
    }

    /// A request signed with the node key over `method path` and `content`.
    fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        content: &str,
    ) -> reqwest::RequestBuilder {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let signed = transfer::agent_request(method.as_str(), path, content);
        let signature = report::sign(self.node.key.as_bytes(), self.node.node, now, &signed);
        self.client
            .request(method, format!("{}{path}", self.config.balancer_url))
            .header(report::NODE_HEADER, self.node.node.to_string())
            .header(report::TIMESTAMP_HEADER, now.to_string())
            .header(report::SIGNATURE_HEADER, signature)
    }

    /// Uploads every archive not yet accepted by the balancer.
    async fn upload_all(&self) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.config.outbox_dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rid) = name.strip_suffix(".cfx") else {
                continue;
            };
            if rid.starts_with('.')
                || exists(self.config.outbox_dir.join(format!("{rid}.sent"))).await
            {
                continue;
            }
            if let Err(e) = self.upload(rid).await {
                tracing::warn!(record_id = rid, error = %e, "Outbox: upload failed; will retry.");
            }
        }
    }

    async fn upload(&self, rid: &str) -> anyhow::Result<()> {
        let dir = &self.config.outbox_dir;
        let archive_path = dir.join(format!("{rid}.cfx"));
        let metadata = tokio::fs::read_to_string(dir.join(format!("{rid}.xml"))).await?;
        let metadata_b64 = transfer::encode_metadata(&metadata);
        let sha256 = tokio::fs::read_to_string(dir.join(format!("{rid}.sha256"))).await?;
        let size = tokio::fs::metadata(&archive_path).await?.len();
        let path = format!("{}/{rid}", transfer::AGENT_ARCHIVES_PATH);
        let file = tokio::fs::File::open(&archive_path).await?;
        let response = self
            .signed(
                reqwest::Method::PUT,
                &path,
                &format!("{sha256}\n{metadata_b64}"),
            )
            .header(transfer::ARCHIVE_SHA256_HEADER, &sha256)
            .header(transfer::METADATA_HEADER, metadata_b64)
            .header("content-type", "application/octet-stream")
            .header("content-length", size)
            .body(reqwest::Body::from(file))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "balancer answered {status}: {text}");
        // The archive stays here too until its recorder confirms (the balancer could lose its
        // copy); `.sent` stops further uploads.
        tokio::fs::write(dir.join(format!("{rid}.sent")), &sha256).await?;
        tracing::info!(record_id = rid, size, answer = %text, "Archive handed to the balancer.");
        Ok(())
    }

    /// Deletes what the balancer says is settled: the outbox files and BBB's published folders.
    async fn settle(&self) -> anyhow::Result<()> {
        let path = transfer::AGENT_ARCHIVES_PATH;
        let response = self
            .signed(reqwest::Method::GET, path, EMPTY_SHA256)
            .timeout(self.config.timeout)
            .send()
            .await?
            .error_for_status()?;
        let answer: transfer::Settled = response.json().await?;
        for rid in &answer.settled {
            if !transfer::is_safe_record_id(rid) {
                continue;
            }
            let (outbox, published, id) = (
                self.config.outbox_dir.clone(),
                self.config.published_dir.clone(),
                rid.clone(),
            );
            tokio::task::spawn_blocking(move || forget(&outbox, &published, &id)).await?;
            let path = format!("{}/{rid}", transfer::AGENT_ARCHIVES_PATH);
            self.signed(reqwest::Method::DELETE, &path, EMPTY_SHA256)
                .timeout(self.config.timeout)
                .send()
                .await?
                .error_for_status()?;
            tracing::info!(
                record_id = rid,
                "Recording is on its recorder; deleted from this node."
            );
        }
        Ok(())
    }
}

/// Whether `path` exists, asked on the blocking pool.
async fn exists(path: PathBuf) -> bool {
    tokio::fs::try_exists(path).await.unwrap_or(false)
}

/// Deletes a settled recording's outbox files and BBB's published folders (blocking: a
/// recording folder can hold thousands of files).
fn forget(outbox: &Path, published: &Path, rid: &str) {
    for suffix in ["cfx", "sha256", "sent", "xml"] {
        remove_file(&outbox.join(format!("{rid}.{suffix}")));
    }
    let Ok(formats) = std::fs::read_dir(published) else {
        return;
    };
    for format in formats.flatten() {
        let folder = format.path().join(rid);
        if folder.is_dir() {
            if let Err(e) = std::fs::remove_dir_all(&folder) {
                tracing::error!(folder = %folder.display(), error = %e, "Could not delete a published recording.");
            }
        }
    }
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::error!(path = %path.display(), error = %e, "Could not remove an outbox file.");
        }
    }
}

/// The published recordings under `published` (`<format>/<recordID>/metadata.xml`), grouped
/// by recording id.
fn find(published: &Path) -> Vec<Found> {
    let mut by_id: HashMap<String, Found> = HashMap::new();
    let Ok(formats) = std::fs::read_dir(published) else {
        return Vec::new();
    };
    for format in formats.flatten() {
        let format_name = format.file_name().to_string_lossy().into_owned();
        let Ok(recordings) = std::fs::read_dir(format.path()) else {
            continue;
        };
        for folder in recordings.flatten() {
            let rid = folder.file_name().to_string_lossy().into_owned();
            if !transfer::is_safe_record_id(&rid) || !folder.path().is_dir() {
                continue;
            }
            let Ok(xml) = std::fs::read_to_string(folder.path().join("metadata.xml")) else {
                continue;
            };
            let Some(recording) = conflux_shared::metadata::parse(&xml) else {
                continue;
            };
            if recording.record_id != rid {
                continue;
            }
            by_id
                .entry(rid)
                .or_insert_with(|| Found {
                    recording,
                    metadata_xml: xml,
                    formats: Vec::new(),
                })
                .formats
                .push((format_name.clone(), folder.path()));
        }
    }
    by_id.into_values().collect()
}

/// Zips and encrypts one recording into `<outbox>/<recordID>.cfx`; returns the archive size.
fn pack(outbox: &Path, found: &Found, key: &RecorderKey) -> anyhow::Result<u64> {
    let rid = &found.recording.record_id;
    let zip_path = outbox.join(format!(".{rid}.zip"));
    let partial = outbox.join(format!(".{rid}.cfx"));
    let result = (|| {
        write_zip(&zip_path, rid, &found.formats)?;
        let (size, sha256) = archive::digest(std::fs::File::open(&zip_path)?)?;
        let manifest = archive::Manifest {
            record_id: rid.clone(),
            meeting_id: found.recording.meeting_id.clone(),
            institution: found
                .recording
                .meta(transfer::META_INSTITUTION)
                .unwrap_or_default()
                .to_owned(),
            size,
            sha256,
        };
        let plain = std::io::BufReader::new(std::fs::File::open(&zip_path)?);
        let file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
        let mut out = archive::Digesting::new(file);
        archive::encrypt(plain, &mut out, key, &manifest, archive::CHUNK)?;
        let (file, written, sha256) = out.finish();
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::write(outbox.join(format!("{rid}.xml")), &found.metadata_xml)?;
        std::fs::write(outbox.join(format!("{rid}.sha256")), sha256)?;
        std::fs::rename(&partial, outbox.join(format!("{rid}.cfx")))?;
        anyhow::Ok(written)
    })();
    remove_file(&zip_path);
    if result.is_err() {
        remove_file(&partial);
    }
    result
}

/// A stored (uncompressed: media is compressed already) zip of the format folders, entries
/// named `<format>/<recordID>/<path>`; symbolic links are skipped.
fn write_zip(path: &Path, rid: &str, formats: &[(String, PathBuf)]) -> anyhow::Result<()> {
    use zip::write::SimpleFileOptions;
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(std::fs::File::create(path)?));
    let mut buf = vec![0u8; 1 << 16];
    for (format, folder) in formats {
        let mut stack = vec![(folder.clone(), format!("{format}/{rid}"))];
        while let Some((dir, prefix)) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let kind = entry.file_type()?;
                let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
                if kind.is_dir() {
                    stack.push((entry.path(), name));
                } else if kind.is_file() {
                    zip.start_file(name, options)?;
                    let mut file = std::fs::File::open(entry.path())?;
                    loop {
                        let n = file.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        zip.write_all(&buf[..n])?;
                    }
                }
            }
        }
    }
    zip.finish()?.flush()?;
    Ok(())
}
