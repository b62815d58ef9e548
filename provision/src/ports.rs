//! Free loopback ports for local instances, and `{port}`/`{addr}` substitution in their argv.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// How many times to ask the OS for a port before giving up on avoiding `taken`.
const PICK_ATTEMPTS: usize = 16;

/// Asks the OS for a free port on 127.0.0.1 (bind to port 0, read it, release it), skipping
/// ports in `taken` (those handed to instances that may not have bound them yet).
///
/// The port is free when picked, not reserved: an unrelated process can grab it before the
/// instance binds. The instance then fails to start and is replaced like any other failure.
pub(crate) fn pick_free_port(taken: &BTreeSet<u16>) -> io::Result<u16> {
    for _ in 0..PICK_ATTEMPTS {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("the OS kept returning ports already given to instances ({PICK_ATTEMPTS} tries)"),
    ))
}

/// The loopback address an instance on `port` listens on.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Replaces `{port}` and `{addr}` in one argument or environment value.
pub(crate) fn substitute(value: &str, port: u16) -> String {
    value
        .replace("{port}", &port.to_string())
        .replace("{addr}", &loopback(port).to_string())
}

/// `{port}` / `{addr}` in an environment value of a container: its own port, on all
/// interfaces (published ports and Services reach it through the container's interface).
pub(crate) fn substitute_in_container(value: &str, container_port: u16) -> String {
    value
        .replace("{port}", &container_port.to_string())
        .replace("{addr}", &format!("0.0.0.0:{container_port}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn substitutes_port_and_addr_anywhere_in_an_argument() {
        assert_eq!(substitute("{port}", 8081), "8081");
        assert_eq!(
            substitute("--listen={addr}", 8081),
            "--listen=127.0.0.1:8081"
        );
        assert_eq!(substitute("{addr}/{port}", 9), "127.0.0.1:9/9");
        assert_eq!(substitute("plain", 9), "plain");
        assert_eq!(substitute_in_container("{addr}", 8080), "0.0.0.0:8080");
        assert_eq!(substitute_in_container("PORT={port}", 8080), "PORT=8080");
    }

    #[test]
    fn picked_port_is_bindable_and_not_taken() {
        let first = pick_free_port(&BTreeSet::new()).unwrap();
        let taken: BTreeSet<u16> = [first].into();
        let second = pick_free_port(&taken).unwrap();
        assert_ne!(first, second);
        TcpListener::bind((Ipv4Addr::LOCALHOST, second)).unwrap();
    }
}
