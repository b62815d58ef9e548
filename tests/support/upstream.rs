//! A real HTTP/1.1 upstream server on an ephemeral port, whose latency and status the test can
//! change while it runs. It answers with its name so the test sees which pool served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
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
        let mut headers = serde_json::Map::new();
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
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                let joined = match headers.get(&k).and_then(|old| old.as_str()) {
                    Some(old) => format!("{old}, {v}"),
                    None => v,
                };
                headers.insert(k, serde_json::Value::String(joined));
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
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
