//! Ephemeral ports from the OS: never fixed ports.

use std::net::TcpListener;

/// A port that was free a moment ago on 127.0.0.1 (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out an ephemeral port")
}

/// `N` distinct ports that were free a moment ago. All are held until the last is picked: a
/// port released at once can be handed out again by the next bind.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: [TcpListener; N] = std::array::from_fn(|_| {
        TcpListener::bind("127.0.0.1:0").expect("the OS hands out an ephemeral port")
    });
    held.map(|l| l.local_addr().expect("bound").port())
}
