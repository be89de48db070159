//! A private certificate authority for HTTPS nodes in tests (rcgen): certificates as PEM files
//! for `conflux-bbb-sim --tls-cert/--tls-key`, and the CA's PEM for `SSL_CERT_FILE`.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::sim::TlsFiles;

/// A CA made for one test; its files live as long as it does.
pub struct TestCa {
    certificate: rcgen::Certificate,
    key: rcgen::KeyPair,
    dir: TempDir,
    /// The CA's certificate (PEM): what a client trusting it is given.
    pub pem: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let certificate = params.self_signed(&key).expect("a self-signed CA");
        let dir = tempfile::tempdir().expect("temporary directory");
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, certificate.pem()).expect("write the CA");
        TestCa {
            certificate,
            key,
            dir,
            pem,
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses) signed by this CA.
    pub fn issue(&self, file: &str, names: &[&str]) -> TlsFiles {
        let key = rcgen::KeyPair::generate().expect("a key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certificate = rcgen::CertificateParams::new(names)
            .expect("certificate params")
            .signed_by(&key, &self.certificate, &self.key)
            .expect("a signed certificate");
        let write = |suffix: &str, text: String| -> PathBuf {
            let path = self.dir.path().join(format!("{file}.{suffix}"));
            std::fs::write(&path, text).expect("write a PEM file");
            path
        };
        TlsFiles {
            certificate: write("crt", certificate.pem()),
            key: write("key", key.serialize_pem()),
        }
    }
}

/// The harness's HTTP client, also trusting the CA certificate in `pem`.
pub fn client_trusting(pem: &Path) -> reqwest::Client {
    let pem = std::fs::read(pem).expect("read the CA");
    super::http_builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"))
        .build()
        .expect("HTTP client builds")
}
