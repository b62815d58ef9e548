//! An HTTP/1.1 upstream on an ephemeral port that can be broken on purpose while it runs:
//! refusing connections, black-holing requests, or resetting mid-response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the upstream treats requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers 200 with its name.
    None,
    /// Its listening socket is closed (connections are refused) and open connections are
    /// reset at their next request, as when the process died.
    Refuse,
    /// Accepts connections and reads requests but never answers.
    BlackHole,
    /// Reads the request, sends half of the response head, then resets the connection: the
    /// proxy has nothing it could have passed on yet.
    ResetInHead,
    /// Sends the whole head and part of the body, then resets: the client already has its 200.
    ResetInBody,
}

struct Shared {
    name: String,
    hits: AtomicU64,
}

/// A running fault-injectable upstream; stops when dropped.
pub struct FaultyUpstream {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyUpstream {
    /// Starts a healthy server answering `name`.
    pub async fn start(name: &str) -> FaultyUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("local addr");
        let (fault, rx) = watch::channel(Fault::None);
        let shared = Arc::new(Shared {
            name: name.to_string(),
            hits: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, addr, rx, Arc::clone(&shared)));
        FaultyUpstream {
            addr,
            fault,
            shared,
            task,
        }
    }

    /// Its address (the same before and after a `Refuse`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the fault; takes effect at once for new connections and at each connection's
    /// next request.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Requests answered 200 so far.
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Relaxed)
    }
}

impl Drop for FaultyUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    mut fault: watch::Receiver<Fault>,
    shared: Arc<Shared>,
) {
    let mut listener = Some(listener);
    loop {
        let refusing = *fault.borrow_and_update() == Fault::Refuse;
        match (&listener, refusing) {
            (Some(_), true) => listener = None,
            (None, false) => listener = Some(rebind(addr).await),
            _ => {}
        }
        let Some(l) = &listener else {
            if fault.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve(stream, fault.clone(), Arc::clone(&shared)));
                }
            }
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The same port again (std sets SO_REUSEADDR, so lingering connections do not block it).
async fn rebind(addr: SocketAddr) -> TcpListener {
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve(stream: TcpStream, mut fault: watch::Receiver<Fault>, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    loop {
        // Request line and headers; the chaos load only sends GETs without a body.
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h).await {
                Ok(0) | Err(_) => return,
                Ok(_) if h.trim_end().is_empty() => break,
                Ok(_) => {}
            }
        }
        let now = *fault.borrow_and_update();
        let stream = reader.get_mut();
        match now {
            Fault::None => {
                let body = &shared.name;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
                shared.hits.fetch_add(1, Relaxed);
            }
            Fault::Refuse => return reset(stream),
            Fault::BlackHole => {
                // Hold the connection open and silent until the fault is lifted, then close it:
                // the request is never answered.
                while *fault.borrow_and_update() == Fault::BlackHole {
                    if fault.changed().await.is_err() {
                        return;
                    }
                }
                return;
            }
            Fault::ResetInHead => {
                let _sent = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
                return reset(stream);
            }
            Fault::ResetInBody => {
                let _sent = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\npartial-")
                    .await;
                let _flushed = stream.flush().await;
                return reset(stream);
            }
        }
    }
}

/// Closes with RST instead of FIN: SO_LINGER 0, then drop.
fn reset(stream: &TcpStream) {
    // If the option cannot be set the drop still closes the connection, with a FIN.
    let _linger = stream.set_zero_linger();
}
