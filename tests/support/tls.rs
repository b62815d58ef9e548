//! Certificates made at test time (rcgen, ECDSA P-256), written as PEM files for the proxy and
//! handed to clients as roots.

use std::path::{Path, PathBuf};

/// A self-signed certificate and its key, on disk.
pub struct TestCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER (what a TLS server presents).
    pub der: Vec<u8>,
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
}

/// Validity of a made certificate.
#[derive(Clone, Copy, Debug)]
pub enum Validity {
    /// rcgen's default window, 1975 to 4096: valid whenever the test runs.
    Current,
    /// Ended on 2020-01-02.
    Expired,
}

impl TestCert {
    /// A certificate for `names` (DNS names, wildcards allowed), written to `dir/<file>.pem` and
    /// `dir/<file>.key`, replacing files already there atomically, as a rotation would.
    pub fn make(dir: &Path, file: &str, names: &[&str], validity: Validity) -> TestCert {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("certificate params");
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *first);
        }
        if let Validity::Expired = validity {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 2);
        }
        let key = rcgen::KeyPair::generate().expect("key pair");
        let cert = params.self_signed(&key).expect("self-signed certificate");
        let (cert_path, key_path) = (
            dir.join(format!("{file}.pem")),
            dir.join(format!("{file}.key")),
        );
        write_atomically(&cert_path, &cert.pem());
        write_atomically(&key_path, &key.serialize_pem());
        TestCert {
            cert_pem: cert.pem(),
            der: cert.der().to_vec(),
            cert: cert_path,
            key: key_path,
        }
    }

    /// The certificate as a client root.
    pub fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).expect("PEM certificate")
    }

    /// `{ cert = "...", key = "..." }` for `[proxy.tls] certificates`.
    pub fn toml(&self) -> String {
        format!(
            "{{ cert = \"{}\", key = \"{}\" }}",
            self.cert.display(),
            self.key.display()
        )
    }
}

/// Writes `text` to `path` through a rename, so a reader never sees half a file.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write file");
    std::fs::rename(&tmp, path).expect("rename into place");
}
