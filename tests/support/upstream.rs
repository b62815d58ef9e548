//! A real HTTP/1.1 upstream server on an ephemeral port, whose latency and status the test can
//! change while it runs. It answers with its name so the test sees which pool served.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

struct Control {
    name: String,
    /// Answer with the request's headers as a JSON object instead of the name.
    echo_headers: bool,
    delay_ms: AtomicU64,
    status: AtomicU16,
    hits: AtomicU64,
    /// Every request as it arrived: request line, headers, body.
    seen: Mutex<Vec<Seen>>,
}

/// One request as the upstream received it.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// `GET /x HTTP/1.1`.
    pub line: String,
    /// Header lines as sent, in order.
    pub headers: Vec<String>,
    /// The body bytes (by Content-Length).
    pub body: Vec<u8>,
}

/// A running upstream; stops when dropped.
pub struct TestUpstream {
    addr: SocketAddr,
    control: Arc<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    /// Starts a server answering `name` with 200.
    pub async fn start(name: &str) -> TestUpstream {
        Self::start_with(name, false).await
    }

    /// Starts a server answering 200 with the request headers as a JSON object (lowercase
    /// names; repeated headers joined with ", ").
    pub async fn start_echo(name: &str) -> TestUpstream {
        Self::start_with(name, true).await
    }

    async fn start_with(name: &str, echo_headers: bool) -> TestUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("local addr");
        let control = Arc::new(Control {
            name: name.to_string(),
            echo_headers,
            delay_ms: AtomicU64::new(0),
            status: AtomicU16::new(200),
            hits: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let c = Arc::clone(&control);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(stream, Arc::clone(&c)));
            }
        });
        TestUpstream {
            addr,
            control,
            task,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes every later response wait this long.
    pub fn set_delay(&self, d: Duration) {
        self.control.delay_ms.store(d.as_millis() as u64, Relaxed);
    }

    /// Makes every later response use this status.
    pub fn set_status(&self, s: u16) {
        self.control.status.store(s, Relaxed);
    }

    /// Requests answered so far (health checks excluded: they never send a request).
    pub fn hits(&self) -> u64 {
        self.control.hits.load(Relaxed)
    }

    /// Every request received so far, as it arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.control
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, c: Arc<Control>) {
    let mut reader = BufReader::new(stream);
    loop {
        // Request line and headers.
        let mut content_length = 0usize;
        let mut chunked = false;
        let mut headers = serde_json::Map::new();
        let mut raw_headers = Vec::new();
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            raw_headers.push(h.to_string());
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.trim().eq_ignore_ascii_case("chunked");
                }
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                let joined = match headers.get(&k).and_then(|old| old.as_str()) {
                    Some(old) => format!("{old}, {v}"),
                    None => v,
                };
                headers.insert(k, serde_json::Value::String(joined));
            }
        }
        let body = if chunked {
            match read_chunked(&mut reader).await {
                Some(b) => b,
                None => return,
            }
        } else {
            let mut body = vec![0u8; content_length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            body
        };
        c.seen.lock().unwrap_or_else(|p| p.into_inner()).push(Seen {
            line: line.trim_end().to_string(),
            headers: raw_headers,
            body: body.clone(),
        });
        let delay = c.delay_ms.load(Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        c.hits.fetch_add(1, Relaxed);
        let status = c.status.load(Relaxed);
        let body = if c.echo_headers {
            serde_json::Value::Object(headers).to_string()
        } else {
            c.name.clone()
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len(),
        );
        if reader.get_mut().write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A chunked body (RFC 9112 7.1), trailers skipped; `None` on a malformed or cut body.
async fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).await.ok()?;
        let hex = size.trim_end().split(';').next()?;
        let n = usize::from_str_radix(hex.trim(), 16).ok()?;
        if n == 0 {
            // Trailer fields up to the empty line.
            loop {
                let mut t = String::new();
                if reader.read_line(&mut t).await.ok()? == 0 || t.trim_end().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + n, 0);
        reader.read_exact(&mut body[start..]).await.ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).await.ok()?;
    }
}
