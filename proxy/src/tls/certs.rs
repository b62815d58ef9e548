//! One certificate/key pair read from PEM files and checked: readable, parsable, matching, in
//! date. Every error names the file it is about.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A certificate ready to serve, with what SNI matching and the expiry metric need.
#[derive(Debug)]
pub struct LoadedCert {
    /// Chain and signing key, as rustls serves them.
    pub key: Arc<CertifiedKey>,
    /// Lowercase DNS names it is valid for (`*.example.com` kept as written); the subject CN
    /// when it has no DNS subject-alternative names.
    pub names: Vec<String>,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// The certificate file, for labels and messages.
    pub cert_path: PathBuf,
}

/// Why a certificate or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not what it should be.
    #[error("{}: {message}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn content(path: &Path, message: impl Into<String>) -> CertError {
    CertError::Content {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads and checks the pair; `now` (Unix seconds) decides whether it has expired.
pub fn load(cert_path: &Path, key_path: &Path, now: i64) -> Result<LoadedCert, CertError> {
    let chain = read_chain(cert_path)?;
    let key_der = read_key(key_path)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| content(key_path, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        content(
            key_path,
            format!(
                "does not match the certificate in {}: {e}",
                cert_path.display()
            ),
        )
    })?;
    let (names, not_before, not_after) = describe(cert_path, &certified.cert[0])?;
    if now > not_after {
        return Err(content(
            cert_path,
            format!("expired on {} (UTC)", utc(not_after)),
        ));
    }
    if now < not_before {
        return Err(content(
            cert_path,
            format!("not valid before {} (UTC)", utc(not_before)),
        ));
    }
    Ok(LoadedCert {
        key: Arc::new(certified),
        names,
        not_after,
        cert_path: cert_path.to_path_buf(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = read(path)?;
    let chain = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(path, format!("unreadable PEM: {e}")))?;
    if chain.is_empty() {
        return Err(content(
            path,
            "holds no PEM certificate (\"BEGIN CERTIFICATE\")",
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = read(path)?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|e| content(path, format!("unreadable PEM: {e}")))?
        .ok_or_else(|| content(path, "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"))
}

/// (DNS names, not-before, not-after) of the leaf certificate.
fn describe(path: &Path, der: &CertificateDer<'_>) -> Result<(Vec<String>, i64, i64), CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| content(path, format!("not an X.509 certificate: {e}")))?;
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    let validity = cert.validity();
    Ok((
        names,
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

/// `2026-12-07 13:05:00` for Unix seconds.
pub fn utc(secs: i64) -> String {
    crate::clock::Utc::from_unix(secs, 0).date_time()
}
