//! `[recordings]`: the Scalelite spool import, where archives wait, archive sizes, protected playback links and
//! whether recorded meetings need a recording server.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{positive, seconds, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRecordings {
    /// Scalelite-style `*.tar` recordings dropped here by nodes without the agent are
    /// encrypted for their institution's recording server (default `<data_dir>/spool`).
    pub spool_dir: Option<PathBuf>,
    /// Encrypted archives waiting for their recorder (default `<data_dir>/archives`). With
    /// several balancers on one database, a folder every one of them mounts.
    pub archive_dir: Option<PathBuf>,
    pub import_interval_secs: f64,
    /// Uploaded archives larger than this are refused.
    pub max_archive_mb: u64,
    /// New recordings are protected (one-time playback links) unless updateRecordings says
    /// otherwise.
    pub protected: bool,
    /// How long a protected recording's playback link stays valid.
    pub token_minutes: f64,
    /// Integrations without a recording server get no recordings (the record flag is removed,
    /// Mconf's rule). Off, their recordings stay on the nodes, as with Scalelite without its
    /// importer.
    pub require_recorder: bool,
}

impl Default for RawRecordings {
    fn default() -> Self {
        RawRecordings {
            spool_dir: None,
            archive_dir: None,
            import_interval_secs: 10.0,
            max_archive_mb: 20 * 1024,
            protected: false,
            token_minutes: 60.0,
            require_recorder: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecordingsConfig {
    /// None = `<data_dir>/spool`.
    pub spool_dir: Option<PathBuf>,
    /// None = `<data_dir>/archives`.
    pub archive_dir: Option<PathBuf>,
    pub import_interval: Duration,
    pub max_archive_bytes: u64,
    pub protected: bool,
    pub token_lifetime: Duration,
    pub require_recorder: bool,
}

impl RawRecordings {
    pub(super) fn validate(self) -> Result<RecordingsConfig, ConfigError> {
        Ok(RecordingsConfig {
            spool_dir: self.spool_dir,
            archive_dir: self.archive_dir,
            import_interval: seconds(
                "recordings.import_interval_secs",
                positive("recordings.import_interval_secs", self.import_interval_secs)?,
            )?,
            max_archive_bytes: self.max_archive_mb.saturating_mul(1 << 20),
            protected: self.protected,
            token_lifetime: seconds(
                "recordings.token_minutes",
                positive("recordings.token_minutes", self.token_minutes)? * 60.0,
            )?,
            require_recorder: self.require_recorder,
        })
    }
}
