//! A keep-alive HTTP/1.1 load generator that counts every failure the way wrk does (socket
//! errors and non-2xx answers): each connection sends a request, reads the whole answer, and
//! sends the next on the same connection until the server says `Connection: close`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Per-request deadline: a request not answered in this time is a timeout error.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    non_2xx: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
}

/// What a run counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// 2xx answers.
    pub ok: u64,
    /// Other answers.
    pub non_2xx: u64,
    /// Connect, read, write errors, timeouts, and connections closed under a request.
    pub errors: u64,
    /// New connections after the server asked to close one (not failures).
    pub reconnects: u64,
}

impl Totals {
    /// Requests sent.
    pub fn total(&self) -> u64 {
        self.ok + self.non_2xx + self.errors
    }

    /// Failures per 100k requests.
    pub fn failures_per_100k(&self) -> f64 {
        (self.non_2xx + self.errors) as f64 * 100_000.0 / self.total().max(1) as f64
    }
}

/// A running load.
pub struct KeepAliveLoad {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    workers: tokio::task::JoinSet<()>,
}

impl KeepAliveLoad {
    /// `connections` keep-alive connections sending `GET path` to `addr` back to back.
    pub fn start(addr: SocketAddr, connections: usize, path: &str) -> KeepAliveLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..connections {
            let (stop, counters, path) = (stop.clone(), counters.clone(), path.to_string());
            workers.spawn(async move { worker(addr, &path, &stop, &counters).await });
        }
        KeepAliveLoad {
            stop,
            counters,
            workers,
        }
    }

    /// Counts so far.
    pub fn totals(&self) -> Totals {
        let c = &self.counters;
        Totals {
            ok: c.ok.load(Relaxed),
            non_2xx: c.non_2xx.load(Relaxed),
            errors: c.errors.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
        }
    }

    /// Stops after each connection's request in progress and returns the counts.
    pub async fn stop(mut self) -> Totals {
        self.stop.store(true, Relaxed);
        while self.workers.join_next().await.is_some() {}
        self.totals()
    }
}

async fn worker(addr: SocketAddr, path: &str, stop: &AtomicBool, c: &Counters) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: load.test\r\n\r\n");
    while !stop.load(Relaxed) {
        let Ok(stream) = TcpStream::connect(addr).await else {
            c.errors.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut conn = BufReader::new(stream);
        while !stop.load(Relaxed) {
            match tokio::time::timeout(TIMEOUT, exchange(&mut conn, request.as_bytes())).await {
                Ok(Ok(answer)) => {
                    if (200..300).contains(&answer.status) {
                        c.ok.fetch_add(1, Relaxed);
                    } else {
                        c.non_2xx.fetch_add(1, Relaxed);
                    }
                    if answer.close {
                        c.reconnects.fetch_add(1, Relaxed);
                        break;
                    }
                }
                // Refused, reset, closed under the request, or too slow: a failure, and the
                // connection is done.
                Ok(Err(_)) | Err(_) => {
                    c.errors.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
    }
}

struct Answer {
    status: u16,
    close: bool,
}

async fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<Answer> {
    conn.get_mut().write_all(request).await?;
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let (mut length, mut close) = (0usize, false);
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v
                    .trim()
                    .parse()
                    .map_err(|_| std::io::ErrorKind::InvalidData)?;
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.trim().eq_ignore_ascii_case("close");
            }
        }
    }
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).await?;
    Ok(Answer { status, close })
}
