//! TLS termination: certificates loaded and checked, chosen by SNI per handshake, swapped whole
//! on reload so no connection is dropped.

mod certs;
mod store;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use config::{ConfigError, FieldPath, TlsSettings as TlsConfig};
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::{PreTlsProcess, TlsAccept};
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::tls::TlsRef;
use prometheus::IntCounter;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub use certs::{CertError, LoadedCert, utc};
pub use store::CertStore;

/// The serving certificates and handshake counters, shared by every TLS listener.
#[derive(Debug)]
pub struct TlsState {
    store: ArcSwap<CertStore>,
    started: IntCounter,
    completed: IntCounter,
}

impl TlsState {
    /// State serving `store`, counting handshakes begun and completed into the two counters.
    pub fn new(store: CertStore, started: IntCounter, completed: IntCounter) -> Arc<Self> {
        Arc::new(TlsState {
            store: ArcSwap::from_pointee(store),
            started,
            completed,
        })
    }

    /// Serves `store` from the next handshake on; connections already up keep theirs.
    pub fn replace(&self, store: CertStore) {
        self.store.store(Arc::new(store));
    }

    /// The certificates being served.
    pub fn store(&self) -> arc_swap::Guard<Arc<CertStore>> {
        self.store.load()
    }

    /// Pingora listener settings for one TLS endpoint: this state's certificates by SNI,
    /// ALPN h2 then http/1.1, TLS 1.2 and 1.3 with rustls' default (modern) suites.
    pub fn listener_settings(self: &Arc<Self>) -> pingora_error::Result<TlsSettings> {
        let mut settings = TlsSettings::with_callbacks(Box::new(Completed(Arc::clone(self))))?;
        settings.set_cert_resolver(Arc::new(Resolver(Arc::clone(self))));
        settings.enable_h2();
        Ok(settings)
    }

    /// Counts handshakes as they begin (every TLS connection passes here first).
    pub fn pre_tls(self: &Arc<Self>) -> Arc<dyn PreTlsProcess> {
        Arc::new(Started(Arc::clone(self)))
    }
}

#[derive(Debug)]
struct Resolver(Arc<TlsState>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.0.store.load().choose(hello.server_name())))
    }
}

struct Completed(Arc<TlsState>);

#[async_trait]
impl TlsAccept for Completed {
    async fn handshake_complete_callback(
        &self,
        _tls: &TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.0.completed.inc();
        None
    }
}

struct Started(Arc<TlsState>);

#[async_trait]
impl PreTlsProcess for Started {
    async fn process(&self, _stream: &mut L4Stream) -> pingora_error::Result<()> {
        self.0.started.inc();
        Ok(())
    }
}

/// Loads every certificate of `[proxy.tls]` (from the config file at `source`), all or none:
/// the first bad file is reported with its config field and path.
pub fn load_store(
    tls: &TlsConfig,
    source: &std::path::Path,
    now: i64,
) -> Result<CertStore, ConfigError> {
    let mut loaded = Vec::with_capacity(tls.certificates.len());
    for (i, pair) in tls.certificates.iter().enumerate() {
        let cert = certs::load(&pair.cert, &pair.key, now).map_err(|e| {
            let key = match &e {
                CertError::Read { path, .. } | CertError::Content { path, .. }
                    if *path == pair.key =>
                {
                    "key"
                }
                _ => "cert",
            };
            let field = FieldPath::root("proxy")
                .key("tls")
                .key("certificates")
                .index(i)
                .key(key);
            config::invalid_field(source, field, e)
        })?;
        loaded.push(cert);
    }
    CertStore::new(loaded).ok_or_else(|| {
        config::invalid_field(
            source,
            FieldPath::root("proxy").key("tls").key("certificates"),
            "needs at least one certificate",
        )
    })
}

/// Publishes each served certificate's expiry as `umbra_tls_certificate_expiry_seconds`.
pub fn publish_expiry(metrics: &crate::metrics::Metrics, store: &CertStore) {
    metrics.set_certificates(store.certs().iter().map(|c| {
        let name = c.names.first().map_or("", String::as_str);
        (c.cert_path.to_str().unwrap_or(""), name, c.not_after)
    }));
}
