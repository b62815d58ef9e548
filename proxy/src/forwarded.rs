//! What the upstream learns about the client: `X-Forwarded-For/-Proto/-Host` and, optionally,
//! RFC 7239 `Forwarded`. A client's own values are kept only when it is a trusted proxy;
//! anyone else could forge them.

use std::net::IpAddr;

use http::HeaderValue;

/// The facts the headers are made from.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The peer that connected to this proxy.
    pub peer: Option<IpAddr>,
    /// Whether that peer is in `trusted_proxies`.
    pub trusted: bool,
    /// `http` or `https`, as the client reached this proxy.
    pub scheme: &'static str,
    /// The request's host, as the client sent it.
    pub host: &'a str,
}

/// The incoming values of the headers (all occurrences joined with ", ").
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    /// `X-Forwarded-For`.
    pub xff: Option<String>,
    /// `X-Forwarded-Proto`.
    pub proto: Option<String>,
    /// `X-Forwarded-Host`.
    pub host: Option<String>,
    /// `Forwarded`.
    pub forwarded: Option<String>,
}

/// The values to send upstream (each replaces every incoming occurrence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `X-Forwarded-For`: the chain, the peer last.
    pub xff: String,
    /// `X-Forwarded-Proto`.
    pub proto: String,
    /// `X-Forwarded-Host`.
    pub host: String,
    /// `Forwarded`, when RFC 7239 is on.
    pub forwarded: Option<String>,
}

/// The headers for one hop.
pub fn outgoing(hop: Hop<'_>, incoming: Incoming, rfc7239: bool) -> Outgoing {
    let peer = hop
        .peer
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let keep = |v: Option<String>| v.filter(|s| hop.trusted && !s.trim().is_empty());
    let xff = match keep(incoming.xff) {
        Some(chain) => format!("{chain}, {peer}"),
        None => peer,
    };
    let forwarded = rfc7239.then(|| {
        let node = match hop.peer {
            Some(IpAddr::V6(v6)) => format!("\"[{v6}]\""),
            Some(ip) => ip.to_string(),
            None => "unknown".to_string(),
        };
        let this = format!("for={node};proto={};host={}", hop.scheme, quoted(hop.host));
        match keep(incoming.forwarded) {
            Some(chain) => format!("{chain}, {this}"),
            None => this,
        }
    });
    Outgoing {
        xff,
        proto: keep(incoming.proto).unwrap_or_else(|| hop.scheme.to_string()),
        host: keep(incoming.host).unwrap_or_else(|| hop.host.to_string()),
        forwarded,
    }
}

/// `X-Forwarded-For` for a peer that is not a trusted proxy: its address alone, as [`outgoing`]
/// writes it. IPv4 is formatted by hand: `fmt` cost more than the rest of the header work.
pub fn peer_value(peer: Option<IpAddr>) -> HeaderValue {
    let unknown = || HeaderValue::from_static("unknown");
    match peer {
        Some(IpAddr::V4(v4)) => {
            let mut buf = [0u8; 15];
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    buf[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    buf[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + octet % 10;
                n += 1;
            }
            HeaderValue::from_bytes(&buf[..n]).unwrap_or_else(|_| unknown())
        }
        Some(ip) => HeaderValue::try_from(ip.to_string()).unwrap_or_else(|_| unknown()),
        None => unknown(),
    }
}

/// An RFC 7239 value: a token as is, anything else (a port's colon, say) quoted.
fn quoted(v: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !v.is_empty() && v.bytes().all(token) {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace(['"', '\\'], ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(trusted: bool) -> Hop<'static> {
        Hop {
            peer: Some("10.0.0.5".parse().expect("ip")),
            trusted,
            scheme: "https",
            host: "api.example.com",
        }
    }

    fn spoofed() -> Incoming {
        Incoming {
            xff: Some("1.2.3.4".into()),
            proto: Some("http".into()),
            host: Some("evil.example".into()),
            forwarded: Some("for=1.2.3.4".into()),
        }
    }

    #[test]
    fn an_untrusted_client_cannot_inject_a_chain() {
        let out = outgoing(hop(false), spoofed(), true);
        assert_eq!(out.xff, "10.0.0.5");
        assert_eq!(out.proto, "https");
        assert_eq!(out.host, "api.example.com");
        assert_eq!(
            out.forwarded.as_deref(),
            Some("for=10.0.0.5;proto=https;host=api.example.com")
        );
    }

    #[test]
    fn a_trusted_proxy_chain_is_extended() {
        let out = outgoing(hop(true), spoofed(), true);
        assert_eq!(out.xff, "1.2.3.4, 10.0.0.5");
        assert_eq!(out.proto, "http");
        assert_eq!(out.host, "evil.example");
        assert_eq!(
            out.forwarded.as_deref(),
            Some("for=1.2.3.4, for=10.0.0.5;proto=https;host=api.example.com")
        );
    }

    #[test]
    fn peer_value_is_what_outgoing_writes() {
        let peers = [
            "0.0.0.0",
            "10.0.0.5",
            "127.0.0.1",
            "192.168.100.255",
            "8.80.1.99",
            "::1",
        ];
        for peer in peers
            .map(|p| Some(p.parse().expect("ip")))
            .into_iter()
            .chain([None])
        {
            let h = Hop {
                peer,
                trusted: false,
                scheme: "http",
                host: "h",
            };
            let out = outgoing(h, spoofed(), false);
            assert_eq!(peer_value(peer), out.xff.as_str(), "{peer:?}");
        }
    }

    #[test]
    fn ipv6_and_ports_are_quoted_in_forwarded() {
        let h = Hop {
            peer: Some("2001:db8::1".parse().expect("ip")),
            trusted: false,
            scheme: "http",
            host: "example.com:8080",
        };
        let out = outgoing(h, Incoming::default(), true);
        assert_eq!(out.xff, "2001:db8::1");
        assert_eq!(
            out.forwarded.as_deref(),
            Some("for=\"[2001:db8::1]\";proto=http;host=\"example.com:8080\"")
        );
        assert_eq!(outgoing(h, Incoming::default(), false).forwarded, None);
    }
}
