//! The encrypted recording archive (format version 1), written by the agent (or the balancer
//! for a node without one) and opened only by the owning institution's recorder.
//!
//! ```text
//! "CFXARC01"                      8 bytes: magic and version
//! header length                  u32, big-endian
//! header                         JSON: version, key fingerprint, RSA-OAEP(SHA-256)-wrapped
//!                                AES-256 key, 7-byte nonce prefix, chunk size, manifest
//! chunks                         AES-256-GCM in the STREAM construction (aead's StreamBE32):
//!                                counter and last-chunk flag in the nonce, the header bytes as
//!                                associated data of every chunk
//! ```
//!
//! So the manifest (record id, meeting id, institution, sizes, sha256) is authenticated by every
//! chunk; reordered, dropped or altered chunks fail, and a truncated archive fails because its
//! last chunk is missing. A fresh key encrypts each archive. Encryption and decryption stream
//! in chunks (1 MiB by default): memory stays flat whatever the size. Decryption checks the
//! plaintext's size and sha256 against the manifest at the end; callers write the plaintext to a
//! temporary place and keep it only when [`decrypt`] succeeds.

use std::io::{Read, Write};

use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::{KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CryptoError, RecorderKey};

const MAGIC: &[u8; 8] = b"CFXARC01";
/// Plaintext bytes per chunk unless told otherwise.
pub const CHUNK: usize = 1 << 20;
const TAG: usize = 16;
/// Headers are small; anything bigger is not an archive.
const MAX_HEADER: u32 = 64 * 1024;

/// What an archive holds, authenticated with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub record_id: String,
    pub meeting_id: String,
    /// The owning integration's name.
    pub institution: String,
    /// Filled in by [`encrypt`]: the plaintext's size and hex sha256.
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub sha256: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
    key_fingerprint: String,
    wrapped_key: String,
    nonce_prefix: String,
    chunk_size: usize,
    /// Declared before the data: the plaintext's size and digest go in the trailer check.
    manifest: Manifest,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Key(#[from] CryptoError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a Conflux recording archive (or an unknown version)")]
    NotAnArchive,
    #[error("the archive was encrypted for key {archive}, not this one ({ours})")]
    WrongKey { archive: String, ours: String },
    #[error("the archive is damaged or was tampered with")]
    Tampered,
    #[error("the archive is truncated")]
    Truncated,
    #[error("the private key cannot be read: {0}")]
    PrivateKey(String),
}

/// Encrypts `plain` (the recording's zip) for `key` into `out`; `manifest`'s size and sha256
/// must be known up front (the agent hashes the zip as it writes it), since the header is
/// written before the data. Returns the ciphertext length.
pub fn encrypt(
    mut plain: impl Read,
    mut out: impl Write,
    key: &RecorderKey,
    manifest: &Manifest,
    chunk_size: usize,
) -> Result<u64, ArchiveError> {
    let mut rng = rsa::rand_core::OsRng;
    let mut aes_key = [0u8; 32];
    let mut prefix = [0u8; 7];
    rsa::rand_core::RngCore::fill_bytes(&mut rng, &mut aes_key);
    rsa::rand_core::RngCore::fill_bytes(&mut rng, &mut prefix);
    let wrapped = key
        .key
        .encrypt(&mut rng, Oaep::new::<Sha256>(), &aes_key)
        .map_err(|_| ArchiveError::Key(CryptoError::NotAKey))?;
    let header = serde_json::to_vec(&Header {
        version: 1,
        key_fingerprint: key.fingerprint.clone(),
        wrapped_key: hex::encode(wrapped),
        nonce_prefix: hex::encode(prefix),
        chunk_size,
        manifest: manifest.clone(),
    })
    .map_err(|e| ArchiveError::Io(std::io::Error::other(e)))?;
    out.write_all(MAGIC)?;
    out.write_all(
        &u32::try_from(header.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    )?;
    out.write_all(&header)?;
    let mut written = (MAGIC.len() + 4 + header.len()) as u64;
    let cipher = Aes256Gcm::new(&aes_key.into());
    let mut encryptor = EncryptorBE32::from_aead(cipher, (&prefix).into());
    let mut current = read_chunk(&mut plain, chunk_size)?;
    loop {
        let next = read_chunk(&mut plain, chunk_size)?;
        let payload = Payload {
            msg: &current,
            aad: &header,
        };
        if next.is_empty() {
            let sealed = encryptor
                .encrypt_last(payload)
                .map_err(|_| ArchiveError::Tampered)?;
            out.write_all(&sealed)?;
            written += sealed.len() as u64;
            break;
        }
        let sealed = encryptor
            .encrypt_next(payload)
            .map_err(|_| ArchiveError::Tampered)?;
        out.write_all(&sealed)?;
        written += sealed.len() as u64;
        current = next;
    }
    out.flush()?;
    Ok(written)
}

/// The manifest of an archive, read from its header without decrypting anything.
pub fn manifest(mut archive: impl Read) -> Result<Manifest, ArchiveError> {
    Ok(read_header(&mut archive)?.0.manifest)
}

/// What can be known of an archive without its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub manifest: Manifest,
    /// The fingerprint of the key it was encrypted for.
    pub key_fingerprint: String,
}

/// Checks all that can be checked without the key: the header is whole and well formed (key
/// wrapped for an RSA key of 3072 bits or more, nonce, chunk size, the manifest's size and
/// digest) and `length`, the archive's size in bytes, is exactly what that many chunks make. A
/// truncated or padded archive fails; an altered chunk is only found by [`decrypt`].
pub fn inspect(mut archive: impl Read, length: u64) -> Result<Layout, ArchiveError> {
    let (header, bytes) = read_header(&mut archive)?;
    let wrapped_ok = hex::decode(&header.wrapped_key).is_ok_and(|k| k.len() >= 384);
    let nonce_ok = hex::decode(&header.nonce_prefix).is_ok_and(|p| p.len() == 7);
    let m = &header.manifest;
    let digest_ok = m.sha256.len() == 64 && m.sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !wrapped_ok
        || !nonce_ok
        || !digest_ok
        || header.chunk_size == 0
        || header.chunk_size > 64 << 20
        || header.key_fingerprint.is_empty()
    {
        return Err(ArchiveError::NotAnArchive);
    }
    let chunks = m.size.div_ceil(header.chunk_size as u64).max(1);
    let expected = (MAGIC.len() + 4 + bytes.len()) as u64 + m.size + chunks * TAG as u64;
    match length.cmp(&expected) {
        std::cmp::Ordering::Less => Err(ArchiveError::Truncated),
        std::cmp::Ordering::Greater => Err(ArchiveError::Tampered),
        std::cmp::Ordering::Equal => Ok(Layout {
            manifest: header.manifest,
            key_fingerprint: header.key_fingerprint,
        }),
    }
}

/// Decrypts `archive` with `private_key` (PKCS#8 PEM) into `out`; checks the plaintext against
/// the manifest and returns it.
pub fn decrypt(
    mut archive: impl Read,
    mut out: impl Write,
    private_key: &str,
) -> Result<Manifest, ArchiveError> {
    let private = RsaPrivateKey::from_pkcs8_pem(private_key)
        .map_err(|e| ArchiveError::PrivateKey(e.to_string()))?;
    let public = RecorderKey::from_public(rsa::RsaPublicKey::from(&private))?;
    let (header, header_bytes) = read_header(&mut archive)?;
    if header.key_fingerprint != public.fingerprint {
        return Err(ArchiveError::WrongKey {
            archive: header.key_fingerprint,
            ours: public.fingerprint,
        });
    }
    let wrapped = hex::decode(&header.wrapped_key).map_err(|_| ArchiveError::NotAnArchive)?;
    let aes_key = private
        .decrypt(Oaep::new::<Sha256>(), &wrapped)
        .map_err(|_| ArchiveError::Tampered)?;
    let prefix: [u8; 7] = hex::decode(&header.nonce_prefix)
        .ok()
        .and_then(|p| p.try_into().ok())
        .ok_or(ArchiveError::NotAnArchive)?;
    if aes_key.len() != 32 || header.chunk_size == 0 || header.chunk_size > 64 << 20 {
        return Err(ArchiveError::NotAnArchive);
    }
    let cipher = Aes256Gcm::new_from_slice(&aes_key).map_err(|_| ArchiveError::Tampered)?;
    let mut decryptor = DecryptorBE32::from_aead(cipher, (&prefix).into());
    let sealed_size = header.chunk_size + TAG;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut current = read_chunk(&mut archive, sealed_size)?;
    loop {
        let next = read_chunk(&mut archive, sealed_size)?;
        if next.is_empty() {
            break;
        }
        let payload = Payload {
            msg: &current,
            aad: &header_bytes,
        };
        let plain = decryptor
            .decrypt_next(payload)
            .map_err(|_| ArchiveError::Tampered)?;
        hasher.update(&plain);
        size += plain.len() as u64;
        out.write_all(&plain)?;
        current = next;
    }
    if current.len() < TAG {
        return Err(ArchiveError::Truncated);
    }
    let full = current.len() == sealed_size;
    let payload = Payload {
        msg: &current,
        aad: &header_bytes,
    };
    // A full-size chunk that does not open as the last one: the rest is missing.
    let plain = decryptor.decrypt_last(payload).map_err(|_| {
        if full {
            ArchiveError::Truncated
        } else {
            ArchiveError::Tampered
        }
    })?;
    hasher.update(&plain);
    size += plain.len() as u64;
    out.write_all(&plain)?;
    out.flush()?;
    let manifest = header.manifest;
    if size != manifest.size || hex::encode(hasher.finalize()) != manifest.sha256 {
        return Err(ArchiveError::Tampered);
    }
    Ok(manifest)
}

fn read_header(archive: &mut impl Read) -> Result<(Header, Vec<u8>), ArchiveError> {
    let mut magic = [0u8; 8];
    archive
        .read_exact(&mut magic)
        .map_err(|_| ArchiveError::NotAnArchive)?;
    if &magic != MAGIC {
        return Err(ArchiveError::NotAnArchive);
    }
    let mut len = [0u8; 4];
    archive
        .read_exact(&mut len)
        .map_err(|_| ArchiveError::Truncated)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER {
        return Err(ArchiveError::NotAnArchive);
    }
    let mut bytes = vec![0u8; len as usize];
    archive
        .read_exact(&mut bytes)
        .map_err(|_| ArchiveError::Truncated)?;
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| ArchiveError::NotAnArchive)?;
    if header.version != 1 {
        return Err(ArchiveError::NotAnArchive);
    }
    Ok((header, bytes))
}

/// Up to `size` bytes (fewer only at the end of the stream).
fn read_chunk(reader: &mut impl Read, size: usize) -> std::io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(size);
    reader.take(size as u64).read_to_end(&mut chunk)?;
    Ok(chunk)
}

/// The size and hex sha256 of `data` read to its end (for a manifest).
pub fn digest(mut data: impl Read) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = data.read(&mut buf)?;
        if n == 0 {
            return Ok((size, hex::encode(hasher.finalize())));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// A writer that also measures and hashes what passes through it, so an archive's size and
/// sha256 are known as it is written, without reading it back.
pub struct Digesting<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Digesting<W> {
    pub fn new(inner: W) -> Digesting<W> {
        Digesting {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the byte count and the hex sha256.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.len, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = include_str!("../../tests/fixtures/keys/test-only-recorder-3072.pub.pem");
    const PRIVATE: &str = include_str!("../../tests/fixtures/keys/test-only-recorder-3072.key.pem");

    fn sealed(plain: &[u8], chunk: usize) -> (Vec<u8>, Manifest) {
        let (size, sha256) = digest(plain).unwrap();
        let manifest = Manifest {
            record_id: "rec-1".into(),
            meeting_id: "m-1".into(),
            institution: "uni".into(),
            size,
            sha256,
        };
        let key = RecorderKey::from_pem(PUBLIC).unwrap();
        let mut out = Vec::new();
        let n = encrypt(plain, &mut out, &key, &manifest, chunk).unwrap();
        assert_eq!(n as usize, out.len());
        (out, manifest)
    }

    fn open(archive: &[u8]) -> Result<(Vec<u8>, Manifest), ArchiveError> {
        let mut plain = Vec::new();
        decrypt(archive, &mut plain, PRIVATE).map(|m| (plain, m))
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let data: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
        for len in [0, 1, 999, 1000, 1001, 3000, data.len()] {
            let (archive, manifest) = sealed(&data[..len], 1000);
            let (plain, got) = open(&archive).unwrap();
            assert_eq!(plain, &data[..len], "length {len}");
            assert_eq!(got, manifest);
            assert_eq!(super::manifest(&archive[..]).unwrap(), manifest);
            let layout = inspect(&archive[..], archive.len() as u64).unwrap();
            assert_eq!(layout.manifest, manifest);
            let key = RecorderKey::from_pem(PUBLIC).unwrap();
            assert_eq!(layout.key_fingerprint, key.fingerprint);
            let needle = &data[..len.min(64)];
            if len >= 64 {
                assert!(
                    !archive.windows(needle.len()).any(|w| w == needle),
                    "plaintext visible in the archive"
                );
            }
        }
    }

    #[test]
    fn inspection_finds_cut_and_padded_archives_without_the_key() {
        let (archive, _) = sealed(&[5u8; 4500], 1000);
        let len = archive.len() as u64;
        assert!(matches!(
            inspect(&archive[..], len - 1),
            Err(ArchiveError::Truncated)
        ));
        let half = &archive[..archive.len() / 2];
        assert!(matches!(
            inspect(half, half.len() as u64),
            Err(ArchiveError::Truncated)
        ));
        assert!(matches!(
            inspect(&archive[..], len + 1),
            Err(ArchiveError::Tampered)
        ));
        assert!(matches!(
            inspect(&archive[..10], 10),
            Err(ArchiveError::Truncated)
        ));
        assert!(matches!(
            inspect(&b"PK\x03\x04 a zip"[..], 10),
            Err(ArchiveError::NotAnArchive)
        ));
    }

    #[test]
    fn digesting_writer_matches_reading_back() {
        let (archive, _) = sealed(&[3u8; 2500], 1000);
        let mut writer = Digesting::new(Vec::new());
        writer.write_all(&archive).unwrap();
        let (copy, len, sha) = writer.finish();
        assert_eq!(copy, archive);
        assert_eq!((len, sha), digest(&archive[..]).unwrap());
    }

    #[test]
    fn tampering_truncation_and_wrong_keys_are_refused() {
        let data = vec![7u8; 4500];
        let (archive, _) = sealed(&data, 1000);
        // A flipped bit in a chunk, and in the header (the manifest is authenticated).
        let mut bad = archive.clone();
        let last = bad.len() - 3;
        bad[last] ^= 1;
        assert!(matches!(open(&bad), Err(ArchiveError::Tampered)));
        let mut bad = archive.clone();
        let at = bad.windows(5).position(|w| w == b"rec-1").unwrap();
        bad[at + 4] = b'2';
        assert!(matches!(open(&bad), Err(ArchiveError::Tampered)));
        // Cut at a chunk boundary, and in the middle of a chunk.
        let header_end = archive.len() - (4 * 1016 + 500 + 16);
        let cut = &archive[..header_end + 2 * 1016];
        assert!(
            matches!(open(cut), Err(ArchiveError::Truncated)),
            "{:?}",
            open(cut).err()
        );
        assert!(open(&archive[..archive.len() - 100]).is_err());
        assert!(matches!(open(&archive[..20]), Err(ArchiveError::Truncated)));
        assert!(matches!(
            open(b"PK\x03\x04 a zip"),
            Err(ArchiveError::NotAnArchive)
        ));
        // Another institution's key cannot open it.
        let mut plain = Vec::new();
        let other = include_str!("../../tests/fixtures/keys/recorder-3072.pub.pem");
        let (size, sha256) = digest(&data[..]).unwrap();
        let manifest = Manifest {
            record_id: "r".into(),
            meeting_id: "m".into(),
            institution: "other".into(),
            size,
            sha256,
        };
        let mut theirs = Vec::new();
        encrypt(
            &data[..],
            &mut theirs,
            &RecorderKey::from_pem(other).unwrap(),
            &manifest,
            1000,
        )
        .unwrap();
        assert!(matches!(
            decrypt(&theirs[..], &mut plain, PRIVATE),
            Err(ArchiveError::WrongKey { .. })
        ));
        assert!(plain.is_empty());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn any_bytes_are_refused_without_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                prop_assert!(inspect(&bytes[..], bytes.len() as u64).is_err());
                let _ = manifest(&bytes[..]);
                let mut plain = Vec::new();
                prop_assert!(decrypt(&bytes[..], &mut plain, PRIVATE).is_err());
            }

            #[test]
            fn altered_archives_never_open(
                len in 0usize..3000,
                flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
                cut in any::<prop::sample::Index>(),
            ) {
                let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let (archive, _) = sealed(&data, 1000);
                let mut bad = archive.clone();
                for (at, value) in &flips {
                    let i = at.index(bad.len());
                    bad[i] ^= value;
                }
                prop_assert!(open(&bad).is_err());
                let _ = inspect(&bad[..], bad.len() as u64);
                let short = &archive[..cut.index(archive.len())];
                prop_assert!(open(short).is_err());
                prop_assert!(inspect(short, short.len() as u64).is_err());
            }
        }
    }
}
