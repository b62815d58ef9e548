//! Parsers for the scalar forms the schema accepts: durations, socket addresses, tokens.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// "2s", "500ms", "1m 30s" (humantime).
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{e}: expected a duration like \"2s\", \"500ms\" or \"1m\", got {text:?}")
    })
}

/// "127.0.0.1:8080", "[::1]:8080" or "host:port" (resolved now, first address).
pub(crate) fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(format!(
            "expected \"ip:port\" or \"host:port\", got {text:?} (no port)"
        ));
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{text:?} resolves to no address")),
        Err(e) => Err(format!("cannot resolve {text:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(duration("2").is_err());
        assert!(duration("two seconds").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(socket_addr("127.0.0.1:7001").map(|a| a.port()), Ok(7001));
        assert!(socket_addr("[::1]:80").is_ok());
        assert!(socket_addr("localhost:80").is_ok());
        assert!(socket_addr("127.0.0.1").is_err());
        assert!(socket_addr("127.0.0.1:99999").is_err());
    }
}
