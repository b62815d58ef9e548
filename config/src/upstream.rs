//! A workload's way to its upstreams validated: protocol, TLS, and the headers changed on the way
//! in and out.

use crate::error::{FieldPath, Invalid};
use crate::raw::{RawHeaderRules, RawUpstreamTls};

/// How the proxy speaks to a workload's upstreams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (default).
    #[default]
    H1,
    /// HTTP/2 over TLS (ALPN `h2`).
    H2,
    /// HTTP/2 over plain TCP with prior knowledge (gRPC backends, mostly).
    H2c,
}

impl UpstreamProtocol {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::H1 => "h1",
            UpstreamProtocol::H2 => "h2",
            UpstreamProtocol::H2c => "h2c",
        }
    }
}

/// TLS from the proxy to a workload's upstreams.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpstreamTls {
    /// Server name sent and verified; `None` verifies against the upstream's IP address.
    pub sni: Option<String>,
    /// Verify the upstream's certificate against the system's roots. Default on.
    pub verify: bool,
}

/// Header changes applied in one direction: remove, then set (replace), then add (append).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// Lowercase names removed.
    pub remove: Vec<String>,
    /// (lowercase name, value) replaced or inserted.
    pub set: Vec<(String, String)>,
    /// (lowercase name, value) appended beside any existing values.
    pub add: Vec<(String, String)>,
}

impl HeaderRules {
    /// Whether the rules change nothing.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
}

/// Whether a (lowercase) header name describes the connection or the framing rather than the
/// message: the proxy owns those, so header rules may not touch them.
pub fn is_connection_header(lowercase: &str) -> bool {
    HOP_BY_HOP.contains(&lowercase)
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

pub(crate) fn protocol(
    at: &FieldPath,
    raw: Option<&str>,
    tls: Option<&RawUpstreamTls>,
) -> Result<(UpstreamProtocol, Option<UpstreamTls>), Invalid> {
    let protocol = match raw {
        None | Some("h1") => UpstreamProtocol::H1,
        Some("h2") => UpstreamProtocol::H2,
        Some("h2c") => UpstreamProtocol::H2c,
        Some(other) => {
            return Err(Invalid::new(
                at.key("upstream_protocol"),
                format!(
                    "must be \"h1\", \"h2\" (HTTP/2 over TLS) or \"h2c\" (HTTP/2 cleartext), got {other:?}"
                ),
            ));
        }
    };
    let tls_at = at.key("upstream_tls");
    let tls = match (protocol, tls) {
        (UpstreamProtocol::H2c, Some(_)) => {
            return Err(Invalid::new(
                tls_at,
                "h2c is cleartext: use upstream_protocol = \"h2\" for HTTP/2 over TLS",
            ));
        }
        (UpstreamProtocol::H2, None) => Some(UpstreamTls {
            sni: None,
            verify: true,
        }),
        (_, Some(raw)) => Some(UpstreamTls {
            sni: match raw.sni.as_deref().map(str::trim) {
                Some("") => return Err(Invalid::new(tls_at.key("sni"), "is empty")),
                s => s.map(str::to_string),
            },
            verify: raw.verify.unwrap_or(true),
        }),
        (_, None) => None,
    };
    Ok((protocol, tls))
}

pub(crate) fn header_rules(
    at: &FieldPath,
    raw: Option<&RawHeaderRules>,
) -> Result<HeaderRules, Invalid> {
    let Some(raw) = raw else {
        return Ok(HeaderRules::default());
    };
    let pairs = |key: &str, map: &Option<std::collections::BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .map(|(name, value)| {
                let here = at.key(key).key(name);
                let name = header_name(name).map_err(|m| Invalid::new(here.clone(), m))?;
                header_value(value).map_err(|m| Invalid::new(here, m))?;
                Ok((name, value.clone()))
            })
            .collect::<Result<Vec<_>, Invalid>>()
    };
    let remove = raw
        .remove
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, n)| header_name(n).map_err(|m| Invalid::new(at.key("remove").index(i), m)))
        .collect::<Result<_, _>>()?;
    Ok(HeaderRules {
        remove,
        set: pairs("set", &raw.set)?,
        add: pairs("add", &raw.add)?,
    })
}

/// A header name a rule may change, lowercased.
fn header_name(name: &str) -> Result<String, String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!(
            "{name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if HOP_BY_HOP.contains(&lower.as_str()) {
        return Err(format!(
            "{name:?} describes the connection, not the message; the proxy manages it"
        ));
    }
    Ok(lower)
}

fn header_value(value: &str) -> Result<(), String> {
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!(
            "{value:?} holds a control character (CR, LF, NUL ...)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert_eq!(
            header_name("Strict-Transport-Security"),
            Ok("strict-transport-security".into())
        );
        assert!(header_name("Bad Name").is_err());
        assert!(header_name("").is_err());
        assert!(header_name("Transfer-Encoding").is_err());
        assert!(header_value("max-age=63072000; includeSubDomains").is_ok());
        assert!(header_value("a\r\nInjected: yes").is_err());
    }
}
