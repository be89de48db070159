//! The BigBlueButton protocol, done once: checksums, query strings, signed URLs and typed XML
//! responses, shared by the balancer, the agent, the recorder and the test simulator.
//!
//! Invariant: no network or file I/O and no async runtime here (`body` reads any stream it is
//! given, on any executor), so everything can be unit- and
//! property-tested; [`telemetry::init`] is the one side effect, called by the binaries. The
//! `process` feature adds what binaries need at their edges (`process::shutdown_signal`, the
//! configuration loader in `config`).

pub mod body;
pub mod call;
pub mod checksum;
#[cfg(feature = "cli")]
pub mod cli_docs;
#[cfg(feature = "process")]
pub mod config;
pub mod crypto;
pub mod date;
pub mod metadata;
#[cfg(feature = "process")]
pub mod process;
pub mod query;
pub mod report;
pub mod response;
pub mod secret;
pub mod signed_url;
pub mod status;
pub mod telemetry;
pub mod transfer;
pub mod xml;

pub use call::Call;
pub use checksum::{Algorithm, AlgorithmSet, ChecksumError, SignedQuery};
pub use query::{Query, QueryError};
pub use response::{Body, Response};
pub use secret::Secret;
pub use signed_url::SignedUrl;
pub use xml::{Element, XmlError};
