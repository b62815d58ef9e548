//! The certificates being served and the SNI choice among them: exact name, then wildcard,
//! then the first certificate as the default.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::certs::LoadedCert;

/// An immutable set of certificates; a reload builds a new one and swaps it in whole.
#[derive(Debug)]
pub struct CertStore {
    certs: Vec<LoadedCert>,
    exact: HashMap<String, usize>,
    /// `*.example.com` stored as `example.com`.
    wildcard: HashMap<String, usize>,
}

impl CertStore {
    /// A store over `certs` (at least one; the first is the default). When two certificates
    /// claim a name, the earlier one keeps it.
    pub fn new(certs: Vec<LoadedCert>) -> Option<CertStore> {
        if certs.is_empty() {
            return None;
        }
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (i, c) in certs.iter().enumerate() {
            for name in &c.names {
                match name.strip_prefix("*.") {
                    Some(suffix) => wildcard.entry(suffix.to_string()).or_insert(i),
                    None => exact.entry(name.clone()).or_insert(i),
                };
            }
        }
        Some(CertStore {
            certs,
            exact,
            wildcard,
        })
    }

    /// The certificate for a client's SNI name (`None`: no SNI sent).
    pub fn choose(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        let index = sni
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .and_then(|name| {
                self.exact.get(&name).copied().or_else(|| {
                    // A wildcard covers exactly one label: *.example.com matches a.example.com,
                    // not example.com nor a.b.example.com (RFC 6125).
                    let (_, parent) = name.split_once('.')?;
                    self.wildcard.get(parent).copied()
                })
            })
            .unwrap_or(0);
        &self.certs[index].key
    }

    /// Every certificate, in config order.
    pub fn certs(&self) -> &[LoadedCert] {
        &self.certs
    }
}
