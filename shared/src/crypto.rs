//! Keys of the encrypted-recordings design (and the archive format in [`archive`]): an institution's recording server publishes an RSA
//! public key (3072 bits or more) that agents wrap each archive's AES key with. Here: reading
//! and checking such a key, and its fingerprint (hex sha256 of the DER SubjectPublicKeyInfo),
//! which is what pages and the API show.

pub mod archive;

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha256};

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 3072;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CryptoError {
    #[error("not an RSA public key in PEM (PKCS#8 \"PUBLIC KEY\" or PKCS#1 \"RSA PUBLIC KEY\")")]
    NotAKey,
    #[error("the RSA key has {0} bits; at least {MIN_RSA_BITS} are needed")]
    TooShort(usize),
}

/// A recording server's public key.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderKey {
    key: RsaPublicKey,
    /// The key as PKCS#8 PEM (normalised).
    pub pem: String,
    pub fingerprint: String,
}

impl RecorderKey {
    pub fn from_pem(text: &str) -> Result<RecorderKey, CryptoError> {
        let text = text.trim();
        let key = RsaPublicKey::from_public_key_pem(text)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
            .map_err(|_| CryptoError::NotAKey)?;
        RecorderKey::from_public(key)
    }

    /// Checks a key's size and computes its fingerprint.
    pub fn from_public(key: RsaPublicKey) -> Result<RecorderKey, CryptoError> {
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(CryptoError::TooShort(bits));
        }
        let der = key.to_public_key_der().map_err(|_| CryptoError::NotAKey)?;
        let pem = key
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|_| CryptoError::NotAKey)?;
        Ok(RecorderKey {
            fingerprint: hex::encode(Sha256::digest(der.as_bytes())),
            pem,
            key,
        })
    }

    /// A fresh key pair of `bits` (at least [`MIN_RSA_BITS`]): the private key as PKCS#8 PEM
    /// and the public key.
    pub fn generate(bits: usize) -> Result<(String, RecorderKey), CryptoError> {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let bits = bits.max(MIN_RSA_BITS);
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
            .map_err(|_| CryptoError::NotAKey)?;
        let pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| CryptoError::NotAKey)?;
        let public = RecorderKey::from_public(private.to_public_key())?;
        Ok((pem.to_string(), public))
    }

    pub fn bits(&self) -> usize {
        self.key.size() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_checks_and_fingerprints_keys() {
        let pem = include_str!("../tests/fixtures/keys/recorder-3072.pub.pem");
        let key = RecorderKey::from_pem(pem).unwrap();
        assert_eq!(key.bits(), 3072);
        assert_eq!(key.fingerprint.len(), 64);
        assert_eq!(
            RecorderKey::from_pem(&key.pem).unwrap().fingerprint,
            key.fingerprint
        );
        let weak = include_str!("../tests/fixtures/keys/weak-2048.pub.pem");
        assert_eq!(
            RecorderKey::from_pem(weak),
            Err(CryptoError::TooShort(2048))
        );
        assert_eq!(RecorderKey::from_pem("hello"), Err(CryptoError::NotAKey));
    }
}
