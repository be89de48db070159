//! `conflux-bench-archive`: encrypt and decrypt throughput of the recording archive format
//! (`conflux_shared::crypto::archive`) and the process's peak memory, for a recording of
//! `--mb` megabytes streamed from a generator (never held in memory) to a file and back.
//! A benchmark, not a test: it prints figures and asserts nothing.
#![allow(clippy::print_stdout)] // the figures are the output

use std::io::{BufReader, BufWriter, Read};
use std::time::Instant;

use clap::Parser;
use conflux_bench::procfs::memory_mb;
use conflux_shared::crypto::archive::{self, Manifest};
use conflux_shared::crypto::RecorderKey;

/// Measure archive encryption (see the module docs).
#[derive(Parser)]
struct Args {
    /// Size of the simulated recording in MB.
    #[arg(long, default_value_t = 2048)]
    mb: u64,
}

const PUBLIC: &str =
    include_str!("../../../shared/tests/fixtures/keys/test-only-recorder-3072.pub.pem");
const PRIVATE: &str =
    include_str!("../../../shared/tests/fixtures/keys/test-only-recorder-3072.key.pem");

/// `len` bytes of cheap, non-repeating data.
struct Generator {
    left: u64,
    state: u64,
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bytes = args.mb * 1_000_000;
    let generator = || Generator {
        left: bytes,
        state: 0x9e37_79b9_7f4a_7c15,
    };
    let started = Instant::now();
    let (size, sha256) = archive::digest(generator())?;
    let hashing = started.elapsed().as_secs_f64();
    let manifest = Manifest {
        record_id: "bench".into(),
        meeting_id: "bench".into(),
        institution: "bench".into(),
        size,
        sha256,
    };
    let key = RecorderKey::from_pem(PUBLIC)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("recording.cfxarc");
    let started = Instant::now();
    let written = archive::encrypt(
        generator(),
        BufWriter::new(std::fs::File::create(&path)?),
        &key,
        &manifest,
        archive::CHUNK,
    )?;
    let encrypting = started.elapsed().as_secs_f64();
    let started = Instant::now();
    archive::decrypt(
        BufReader::new(std::fs::File::open(&path)?),
        std::io::sink(),
        PRIVATE,
    )?;
    let decrypting = started.elapsed().as_secs_f64();
    let mb = bytes as f64 / 1e6;
    println!(
        "archive of {mb:.0} MB ({written} bytes written): sha256 {:.0} MB/s, encrypt {:.0} MB/s, decrypt and verify {:.0} MB/s; peak RSS {:.1} MB",
        mb / hashing,
        mb / encrypting,
        mb / decrypting,
        memory_mb(std::process::id(), "VmHWM:")
    );
    Ok(())
}
