//! The access log: one line per request, formatted and written on a thread of its own so a slow
//! disk never stalls traffic. The request path only moves a record into a bounded queue; when the
//! queue is full the line is dropped and counted.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use config::{AccessLogFormat, AccessLogSettings, AccessLogTarget};
use prometheus::IntCounter;
use serde::Serialize;

use policies::PoolKind;

use crate::clock::Utc;
use crate::metrics::HttpVersion;
use crate::threads::{Starter, deferred};
use crate::upstream::Upstream;
use crate::workload::Workload;

/// Lines that may wait for the writer; beyond this, lines are dropped rather than waited for.
const QUEUE: usize = 16 * 1024;
/// The writer wakes this often and writes everything queued: the request path never wakes it
/// (a wake-up per request cost a context switch each, measured as +35% CPU per request).
const WRITE_EVERY: Duration = Duration::from_millis(100);

/// What one request leaves in the log: plain data and shared handles, so the request path
/// allocates only the host and path; formatting happens on the writer thread.
#[derive(Clone)]
pub struct Record {
    /// When the request arrived.
    pub time: SystemTime,
    /// The client's address as the proxy saw it.
    pub client: Option<IpAddr>,
    /// Arrived over TLS.
    pub tls: bool,
    /// HTTP version.
    pub version: HttpVersion,
    /// Request method.
    pub method: http::Method,
    /// Host header (or URI authority).
    pub host: String,
    /// Path and query.
    pub path: String,
    /// Status sent to the client (0: none was sent).
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Arrival to end of response.
    pub duration: Duration,
    /// Matched workload, and the pool that served.
    pub route: Option<(Arc<Workload>, PoolKind)>,
    /// The upstream that served.
    pub upstream: Option<Arc<Upstream>>,
    /// The workload's rollback cooldown was running.
    pub rolled_back: bool,
    /// Referer (combined format only).
    pub referer: Option<String>,
    /// User-Agent (combined format only).
    pub user_agent: Option<String>,
}

enum Msg {
    Line(Record),
    Flush(SyncSender<()>),
}

/// The request path's handle on the log.
pub struct AccessLog {
    tx: SyncSender<Msg>,
    format: AccessLogFormat,
    dropped: IntCounter,
    reopen: Arc<AtomicBool>,
}

impl AccessLog {
    /// Opens the target now (so a bad path fails start-up) and returns the log with its writer
    /// thread, to start with the services. Lines it cannot keep up with are counted in
    /// `dropped`.
    pub fn open(
        settings: &AccessLogSettings,
        dropped: IntCounter,
    ) -> std::io::Result<(Arc<AccessLog>, Starter)> {
        let sink = Sink::open(&settings.target)?;
        let (tx, rx) = sync_channel(QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            rx,
            sink,
            format: settings.format,
            reopen: Arc::clone(&reopen),
        };
        let log = Arc::new(AccessLog {
            tx,
            format: settings.format,
            dropped,
            reopen,
        });
        Ok((log, deferred("umbra-access-log", move || writer.run())))
    }

    /// Whether records should carry Referer and User-Agent.
    pub fn wants_agent(&self) -> bool {
        self.format == AccessLogFormat::Combined
    }

    /// Queues a line; never blocks.
    pub fn log(&self, record: Record) {
        match self.tx.try_send(Msg::Line(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }

    /// Reopens the file at its path before the next write (after logrotate moved it).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Writes out everything queued so far; waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) {
        let (ack, done) = sync_channel(1);
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _answered_or_timed_out = done.recv_timeout(timeout);
        }
    }

    /// Reopens on SIGUSR1. The handler is installed when the thread starts, after a daemon
    /// fork: the parent of a daemon waits for its own SIGUSR1 (the child's "ready").
    pub fn reopen_on_sigusr1(self: &Arc<Self>) -> Starter {
        let log = Arc::clone(self);
        Box::new(move || {
            let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])?;
            deferred("umbra-sigusr1", move || {
                for _ in signals.forever() {
                    log.reopen();
                    tracing::info!("SIGUSR1: access log reopened");
                }
            })()
        })
    }
}

enum Sink {
    Stdout(BufWriter<std::io::Stdout>),
    File(PathBuf, BufWriter<File>),
}

impl Sink {
    fn open(target: &AccessLogTarget) -> std::io::Result<Sink> {
        Ok(match target {
            AccessLogTarget::Stdout => Sink::Stdout(BufWriter::new(std::io::stdout())),
            AccessLogTarget::File(path) => Sink::File(path.clone(), BufWriter::new(append(path)?)),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File(_, w) => w,
        }
    }

    fn reopen(&mut self) {
        if let Sink::File(path, w) = self {
            if let Err(e) = w.flush() {
                tracing::warn!(error = %e, "access log flush before reopen failed");
            }
            match append(path) {
                Ok(f) => *w = BufWriter::new(f),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot reopen the access log; still writing to the old file")
                }
            }
        }
    }
}

fn append(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

struct Writer {
    rx: Receiver<Msg>,
    sink: Sink,
    format: AccessLogFormat,
    reopen: Arc<AtomicBool>,
}

impl Writer {
    fn run(mut self) {
        let mut line = Vec::with_capacity(512);
        loop {
            std::thread::sleep(WRITE_EVERY);
            if self.reopen.swap(false, Ordering::Relaxed) {
                self.sink.reopen();
            }
            loop {
                match self.rx.try_recv() {
                    Ok(Msg::Line(record)) => {
                        line.clear();
                        render(&record, self.format, &mut line);
                        if let Err(e) = self.sink.writer().write_all(&line) {
                            tracing::warn!(error = %e, "access log write failed");
                        }
                    }
                    Ok(Msg::Flush(ack)) => {
                        self.flush();
                        let _waiter_may_be_gone = ack.try_send(());
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            }
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.sink.writer().flush() {
            tracing::warn!(error = %e, "access log flush failed");
        }
    }
}

/// A JSON line's fields.
#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    client: Option<IpAddr>,
    scheme: &'static str,
    protocol: &'static str,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    status: u16,
    bytes: u64,
    duration: f64,
    workload: Option<&'a str>,
    pool: Option<&'static str>,
    upstream: Option<&'a str>,
    guard: Option<&'static str>,
}

/// One line, newline included.
fn render(r: &Record, format: AccessLogFormat, out: &mut Vec<u8>) {
    let time = Utc::from_system(r.time);
    let workload = r.route.as_ref().map(|(w, _)| w.name().as_str());
    let pool = r.route.as_ref().map(|(_, p)| p.as_str());
    let upstream = r.upstream.as_ref().map(|u| u.label());
    match format {
        AccessLogFormat::Json => {
            let line = JsonLine {
                time: time.rfc3339_millis(),
                client: r.client,
                scheme: if r.tls { "https" } else { "http" },
                protocol: r.version.protocol(),
                method: r.method.as_str(),
                host: &r.host,
                path: &r.path,
                status: r.status,
                bytes: r.bytes,
                duration: r.duration.as_secs_f64(),
                workload,
                pool,
                upstream,
                guard: r.rolled_back.then_some("rolled_back"),
            };
            if serde_json::to_writer(&mut *out, &line).is_err() {
                out.extend_from_slice(b"{}");
            }
            out.push(b'\n');
        }
        AccessLogFormat::Combined => {
            let client = r.client.map_or_else(|| "-".to_string(), |c| c.to_string());
            let quoted = |v: &Option<String>| v.as_deref().map_or_else(|| "-".to_string(), escape);
            let line = format!(
                "{client} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" rt={:.3} workload={} pool={} upstream={}\n",
                time.common_log(),
                escape(r.method.as_str()),
                escape(&r.path),
                r.version.protocol(),
                r.status,
                r.bytes,
                quoted(&r.referer),
                quoted(&r.user_agent),
                r.duration.as_secs_f64(),
                workload.unwrap_or("-"),
                pool.unwrap_or("-"),
                upstream.unwrap_or("-"),
            );
            out.extend_from_slice(line.as_bytes());
        }
    }
}

/// Quotes and control characters escaped, as nginx does, so a request cannot forge a log line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let spec = config::parse(
            std::path::Path::new("t.toml"),
            "[[workloads]]\nname = \"api\"\nprimary = [\"10.0.0.9:8080\"]\n",
        )
        .expect("valid");
        let metrics = crate::metrics::Metrics::new().expect("metrics");
        let registry = crate::upstream::UpstreamRegistry::new(spec.proxy.timeouts);
        let table = crate::table::RouteTable::build(&spec, None, &registry, false, &metrics, 0);
        let w = Arc::clone(table.workload("api").expect("api"));
        let upstream = Arc::clone(&w.pool(PoolKind::Primary).members()[0]);
        Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_601_600_250),
            client: Some("10.1.2.3".parse().expect("ip")),
            tls: true,
            version: HttpVersion::H2,
            method: http::Method::GET,
            host: "api.example.com".into(),
            path: "/v1/x?\"q\"\n".into(),
            status: 200,
            bytes: 42,
            duration: Duration::from_micros(3100),
            route: Some((w, PoolKind::Shadow)),
            upstream: Some(upstream),
            rolled_back: false,
            referer: None,
            user_agent: Some("curl/8".into()),
        }
    }

    #[test]
    fn json_lines_carry_every_field() {
        let mut out = Vec::new();
        render(&record(), AccessLogFormat::Json, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).expect("one JSON object");
        assert_eq!(v["time"], "2026-12-07T00:00:00.250Z");
        assert_eq!(v["client"], "10.1.2.3");
        assert_eq!(v["status"], 200);
        assert_eq!(v["workload"], "api");
        assert_eq!(v["pool"], "shadow");
        assert_eq!(v["path"], "/v1/x?\"q\"\n");
    }

    #[test]
    fn combined_lines_cannot_be_forged() {
        let mut out = Vec::new();
        render(&record(), AccessLogFormat::Combined, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.starts_with("10.1.2.3 - - [07/Dec/2026:00:00:00 +0000] \"GET /v1/x?\\\"q\\\"\\x0A HTTP/2.0\" 200 42 \"-\" \"curl/8\" rt=0.003 workload=api pool=shadow"), "{text}");
    }
}
