//! What a translation produces: workloads, proxy-wide edge settings, notes and problems.

use super::syntax::Location;

/// One workload to write as `[[workloads]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Unique workload name.
    pub name: String,
    /// Host patterns; empty = any host.
    pub hosts: Vec<String>,
    /// The location's prefix.
    pub path_prefix: String,
    /// Primary members (`host:port`).
    pub primary: Vec<String>,
    /// The upstream's `backup` servers.
    pub shadow: Vec<String>,
    /// Plain-HTTP requests are answered with a redirect to https (nginx's
    /// `return 301 https://$host$request_uri` server for these hosts).
    pub redirect_https: bool,
    /// How the proxy speaks to the upstreams (`grpc_pass` is HTTP/2).
    pub upstream_protocol: UpstreamProtocol,
    /// Headers changed on the way to the upstream (`proxy_set_header`).
    pub request_headers: HeaderRules,
    /// Headers changed on the way back (`add_header`, `proxy_hide_header`).
    pub response_headers: HeaderRules,
    /// Where it came from, for the comment above it.
    pub sources: Vec<String>,
    /// Things about it that did not carry over exactly.
    pub notes: Vec<Note>,
}

/// How the proxy speaks to a workload's upstreams: the config schema's own type
/// (`proxy_pass http://` is `H1`, `grpc_pass grpc://` `H2c`, `grpc_pass grpcs://` `H2`).
pub use config::UpstreamProtocol;

/// Header changes in one direction, names as nginx spelled them, in the order written.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeaderRules {
    /// Replaced (or inserted): `(name, value)`, one per name.
    pub set: Vec<(String, String)>,
    /// Appended beside existing values: a name nginx sent twice.
    pub add: Vec<(String, String)>,
    /// Removed.
    pub remove: Vec<String>,
}

impl HeaderRules {
    /// Whether the rules change nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// `name: value`, as nginx would send it: a name seen before is sent again beside it.
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        let seen =
            |list: &[(String, String)]| list.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let pair = (name.to_string(), value.to_string());
        if seen(&self.set) {
            if !self.add.contains(&pair) {
                self.add.push(pair);
            }
        } else {
            self.set.push(pair);
        }
    }

    /// Removes `name` (once).
    pub(crate) fn drop_header(&mut self, name: &str) {
        if !self.remove.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            self.remove.push(name.to_string());
        }
    }
}

/// The `[proxy]` settings the nginx config implies: listeners, certificates, forwarded headers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edge {
    /// Plain-HTTP listeners (`[proxy] listen`), `ip:port`.
    pub listen: Vec<String>,
    /// TLS listeners (`[proxy.tls] listen`), `ip:port`.
    pub tls_listen: Vec<String>,
    /// Certificate/key pairs (`[proxy.tls] certificates`); the first is the default.
    pub certificates: Vec<Certificate>,
    /// `set_real_ip_from` networks (`[proxy.forwarded] trusted_proxies`).
    pub trusted_proxies: Vec<String>,
    /// Send RFC 7239 `Forwarded` (`[proxy.forwarded] rfc7239`).
    pub rfc7239: bool,
}

impl Edge {
    /// Whether a `[proxy]` table has anything to say.
    pub fn is_empty(&self) -> bool {
        self.listen.is_empty()
            && self.tls_listen.is_empty()
            && self.trusted_proxies.is_empty()
            && !self.rfc7239
    }
}

/// One certificate and its key, as PEM file paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// `ssl_certificate`.
    pub cert: String,
    /// `ssl_certificate_key`.
    pub key: String,
}

/// Something that does not carry over exactly but does not change where a request goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Where, when it is about one directive.
    pub at: Option<Location>,
    /// What, and what to do about it.
    pub message: String,
}

impl Note {
    /// A note about the directive at `at`.
    pub(crate) fn at(at: &Location, message: impl Into<String>) -> Note {
        Note {
            at: Some(at.clone()),
            message: message.into(),
        }
    }
}

/// Something that cannot be translated: Umbra would route or answer differently.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Where.
    pub at: Location,
    /// What, and why.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// The translation of a whole config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// `[proxy]`: listeners, TLS and forwarded headers.
    pub edge: Edge,
    /// The workloads, in the order their locations were written.
    pub workloads: Vec<Workload>,
    /// Notes about the config as a whole (listeners, TLS, unused upstreams, proxy-wide settings).
    pub notes: Vec<Note>,
}
