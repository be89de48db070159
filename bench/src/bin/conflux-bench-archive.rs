//! `conflux-bench-archive`: encrypt and decrypt throughput of the recording archive format
//! (`conflux_shared::crypto::archive`) and the process's peak memory, for a recording of
//! `--mb` megabytes (a generated file, read in chunks: never held in memory) to a file and back:
//! encryption with the archive's sha256 taken as it is written (as the agent does), decryption
//! with the plaintext's sha256 checked against the manifest; first the primitives alone.
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
    let dir = tempfile::tempdir()?;
    // The recording's zip, on disk as the agent finds it (in the page cache after writing).
    let zip = dir.path().join("recording.zip");
    std::io::copy(
        &mut Generator {
            left: bytes,
            state: 0x9e37_79b9_7f4a_7c15,
        },
        &mut BufWriter::new(std::fs::File::create(&zip)?),
    )?;
    let plain = || std::fs::File::open(&zip);
    let started = Instant::now();
    let (size, sha256) = archive::digest(plain()?)?;
    let hashing = started.elapsed().as_secs_f64();
    let manifest = Manifest {
        record_id: "bench".into(),
        meeting_id: "bench".into(),
        institution: "bench".into(),
        size,
        sha256,
    };
    let key = RecorderKey::from_pem(PUBLIC)?;
    let path = dir.path().join("recording.cfxarc");
    let started = Instant::now();
    // As the agent does: the archive's own sha256 taken as it is written.
    let mut out = archive::Digesting::new(BufWriter::new(std::fs::File::create(&path)?));
    let written = archive::encrypt(plain()?, &mut out, &key, &manifest, archive::CHUNK)?;
    let (_, _, archive_sha256) = out.finish();
    std::hint::black_box(archive_sha256);
    let encrypting = started.elapsed().as_secs_f64();
    let started = Instant::now();
    archive::decrypt(
        BufReader::new(std::fs::File::open(&path)?),
        std::io::sink(),
        PRIVATE,
    )?;
    let decrypting = started.elapsed().as_secs_f64();
    let mb = bytes as f64 / 1e6;
    components(bytes);
    println!(
        "archive of {mb:.0} MB ({written} bytes written): sha256 {:.0} MB/s, encrypt and digest {:.0} MB/s, decrypt and verify {:.0} MB/s; peak RSS {:.1} MB",
        mb / hashing,
        mb / encrypting,
        mb / decrypting,
        memory_mb(std::process::id(), "VmHWM:")
    );
    Ok(())
}

/// The primitives alone, over one chunk in memory: what the format's own work costs.
fn components(bytes: u64) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use sha2::Digest;
    let mut chunk = vec![0u8; archive::CHUNK];
    Generator {
        left: chunk.len() as u64,
        state: 7,
    }
    .read_exact(&mut chunk)
    .ok();
    let rounds = (bytes / archive::CHUNK as u64).max(1);
    let mb = (rounds * archive::CHUNK as u64) as f64 / 1e6;
    let started = Instant::now();
    let mut hasher = sha2::Sha256::new();
    for _ in 0..rounds {
        hasher.update(&chunk);
    }
    std::hint::black_box(hasher.finalize());
    let hashing = started.elapsed().as_secs_f64();
    let cipher = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    let started = Instant::now();
    for i in 0..rounds {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&i.to_be_bytes());
        std::hint::black_box(
            cipher
                .encrypt_in_place_detached(&nonce.into(), b"", &mut chunk)
                .ok(),
        );
    }
    let sealing = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for _ in 0..rounds {
        ctx.update(&chunk);
    }
    std::hint::black_box(ctx.finish());
    let ring_hashing = started.elapsed().as_secs_f64();
    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[7u8; 32]).unwrap(),
    );
    let started = Instant::now();
    for i in 0..rounds {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&i.to_be_bytes());
        std::hint::black_box(
            key.seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(b""),
                &mut chunk,
            )
            .ok(),
        );
    }
    let ring_sealing = started.elapsed().as_secs_f64();
    println!(
        "one core, in memory: sha256 {:.0} MB/s (sha2), {:.0} MB/s (ring); AES-256-GCM {:.0} MB/s (aes-gcm), {:.0} MB/s (ring, the archive's)",
        mb / hashing,
        mb / ring_hashing,
        mb / sealing,
        mb / ring_sealing
    );
}
