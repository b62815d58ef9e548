//! `[proxy]`'s edge tables validated: TLS listeners and certificates, client limits, forwarded
//! headers and the access log.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{FieldPath, Invalid};
use crate::proxy::dur;
use crate::raw::{OneOrMany, RawAccessLog, RawClient, RawForwarded, RawTls};
use crate::values::socket_addr;

/// TLS termination on listeners of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// TLS listeners (HTTP/1.1 and HTTP/2 by ALPN), at least one.
    pub listen: Vec<SocketAddr>,
    /// Certificate/key pairs, at least one. Chosen by SNI against each certificate's DNS
    /// names (wildcards too); the first is the default for unknown names and clients without SNI.
    /// TLS 1.2 and 1.3 only, with rustls' modern cipher suites (no CBC, RC4 or 3DES).
    pub certificates: Vec<CertificatePaths>,
}

/// Where one certificate and its key live (PEM files, relative paths resolved against the
/// config file's directory). Their content is checked by the proxy when it loads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificatePaths {
    /// The certificate followed by its chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// Limits on client connections (slow, idle or greedy clients).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// An idle keep-alive connection is closed after this. Default 60 s.
    pub keepalive_timeout: Duration,
    /// Requests one HTTP/1.1 connection serves before it is closed; `None` = no limit.
    /// Default 1000 (nginx's `keepalive_requests`).
    pub keepalive_requests: Option<u32>,
    /// Slow clients (slowloris): a request head must be complete within this of its first
    /// byte, a new connection must send its first byte within it, and a TLS handshake must
    /// finish within it. Default 10 s.
    pub header_timeout: Duration,
    /// Largest request header block, bytes; larger gets 431. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Concurrent streams per HTTP/2 connection. Default 128 (nginx's default).
    pub h2_max_concurrent_streams: u32,
}

/// What upstreams learn about the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardedSettings {
    /// Peers whose own `X-Forwarded-For` / `Forwarded` is kept and extended. Anyone else's is
    /// replaced by the client address the proxy saw. Default none.
    pub trusted_proxies: Vec<Cidr>,
    /// Also send RFC 7239 `Forwarded: for=..;proto=..;host=..`. Default off.
    pub rfc7239: bool,
}

/// An IP network, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a bare address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not an IP network like \"10.0.0.0/8\" or \"::1\"");
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(format!(
                "{text:?}: prefix /{prefix} is longer than {max} bits"
            ));
        }
        Ok(Cidr { network, prefix })
    }

    /// Whether `ip` is inside this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

/// The access log: one line per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogSettings {
    /// Where lines go.
    pub target: AccessLogTarget,
    /// How each line looks. Default JSON lines.
    pub format: AccessLogFormat,
}

/// Where the access log is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output.
    Stdout,
    /// A file, appended to and reopened on SIGUSR1 (after logrotate moved it).
    File(PathBuf),
}

/// The access log's line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// The Apache/nginx "combined" format, plus duration, workload and pool at the end.
    Combined,
}

/// A list of listen addresses, without duplicates.
pub(crate) fn listeners(
    at: &FieldPath,
    raw: Option<&OneOrMany>,
    default: &[&str],
) -> Result<Vec<SocketAddr>, Invalid> {
    let texts: Vec<String> = match raw {
        Some(list) => list.0.clone(),
        None => default.iter().map(|s| s.to_string()).collect(),
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let field = if raw.is_some_and(|l| l.0.len() > 1) {
            at.index(i)
        } else {
            at.clone()
        };
        let addr = socket_addr(text).map_err(|m| Invalid::new(field.clone(), m))?;
        if out.contains(&addr) {
            return Err(Invalid::new(field, format!("{addr} is listed twice")));
        }
        out.push(addr);
    }
    Ok(out)
}

pub(crate) fn tls(at: &FieldPath, raw: &RawTls, base: &Path) -> Result<TlsSettings, Invalid> {
    let listen = listeners(&at.key("listen"), raw.listen.as_ref(), &[])?;
    if listen.is_empty() {
        return Err(Invalid::new(
            at.key("listen"),
            "is required: the address(es) TLS clients connect to, e.g. \"0.0.0.0:443\"",
        ));
    }
    let list = raw.certificates.as_deref().unwrap_or_default();
    if list.is_empty() {
        return Err(Invalid::new(
            at.key("certificates"),
            "needs at least one { cert = \"PEM file\", key = \"PEM file\" }",
        ));
    }
    let mut certificates = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let here = at.key("certificates").index(i);
        let file = |key: &str, v: &Option<String>| match v.as_deref().map(str::trim) {
            Some(p) if !p.is_empty() => Ok(base.join(p)),
            _ => Err(Invalid::new(here.key(key), "is required (a PEM file path)")),
        };
        certificates.push(CertificatePaths {
            cert: file("cert", &c.cert)?,
            key: file("key", &c.key)?,
        });
    }
    Ok(TlsSettings {
        listen,
        certificates,
    })
}

pub(crate) fn client(at: &FieldPath, raw: Option<&RawClient>) -> Result<ClientLimits, Invalid> {
    let empty = RawClient::default();
    let raw = raw.unwrap_or(&empty);
    let max_header_bytes = raw.max_header_bytes.unwrap_or(64 * 1024);
    if !(1024..=1024 * 1024).contains(&max_header_bytes) {
        return Err(Invalid::new(
            at.key("max_header_bytes"),
            format!("must be between 1024 and 1048576 bytes, got {max_header_bytes}"),
        ));
    }
    let h2_max_concurrent_streams = raw.h2_max_concurrent_streams.unwrap_or(128);
    if h2_max_concurrent_streams == 0 {
        return Err(Invalid::new(
            at.key("h2_max_concurrent_streams"),
            "must be at least 1",
        ));
    }
    Ok(ClientLimits {
        keepalive_timeout: dur(at, "keepalive_timeout", &raw.keepalive_timeout, "60s")?,
        keepalive_requests: match raw.keepalive_requests {
            Some(0) => None,
            n => Some(n.unwrap_or(1000)),
        },
        header_timeout: dur(at, "header_timeout", &raw.header_timeout, "10s")?,
        max_header_bytes,
        h2_max_concurrent_streams,
    })
}

pub(crate) fn forwarded(
    at: &FieldPath,
    raw: Option<&RawForwarded>,
) -> Result<ForwardedSettings, Invalid> {
    let Some(raw) = raw else {
        return Ok(ForwardedSettings::default());
    };
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            Cidr::parse(c).map_err(|m| Invalid::new(at.key("trusted_proxies").index(i), m))
        })
        .collect::<Result<_, _>>()?;
    Ok(ForwardedSettings {
        trusted_proxies,
        rfc7239: raw.rfc7239.unwrap_or(false),
    })
}

pub(crate) fn access_log(
    at: &FieldPath,
    raw: Option<&RawAccessLog>,
    base: &Path,
) -> Result<Option<AccessLogSettings>, Invalid> {
    let Some(raw) = raw else { return Ok(None) };
    let target = match raw.path.as_deref().map(str::trim) {
        None | Some("stdout") | Some("-") => AccessLogTarget::Stdout,
        Some("") => {
            return Err(Invalid::new(
                at.key("path"),
                "is empty: use \"stdout\" or a file path",
            ));
        }
        Some(p) => AccessLogTarget::File(base.join(p)),
    };
    let format = match raw.format.as_deref() {
        None | Some("json") => AccessLogFormat::Json,
        Some("combined") => AccessLogFormat::Combined,
        Some(other) => {
            return Err(Invalid::new(
                at.key("format"),
                format!("must be \"json\" or \"combined\", got {other:?}"),
            ));
        }
    };
    Ok(Some(AccessLogSettings { target, format }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let net = Cidr::parse("10.1.0.0/16").expect("valid");
        assert!(net.contains("10.1.200.3".parse().expect("ip")));
        assert!(!net.contains("10.2.0.1".parse().expect("ip")));
        assert!(net.contains("::ffff:10.1.0.9".parse().expect("ip")));
        let odd = Cidr::parse("192.168.1.128/25").expect("valid");
        assert!(odd.contains("192.168.1.200".parse().expect("ip")));
        assert!(!odd.contains("192.168.1.100".parse().expect("ip")));
        let one = Cidr::parse("::1").expect("valid");
        assert!(one.contains("::1".parse().expect("ip")));
        assert!(!one.contains("::2".parse().expect("ip")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("valid")
                .contains("8.8.8.8".parse().expect("ip"))
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
        assert!(Cidr::parse("example.com").is_err());
    }
}
