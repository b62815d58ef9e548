//! The access log: one line per request, formatted and written on a thread of its own so a slow
//! disk never stalls traffic. The request path only moves a record into a bounded queue; when the
//! queue is full the line is dropped and counted.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use config::{AccessLogFormat, AccessLogSettings, AccessLogTarget};
use prometheus::IntCounter;
use serde::Serialize;

use crate::clock::Utc;
use crate::threads::{Starter, deferred};

/// Lines that may wait for the writer; beyond this, lines are dropped rather than waited for.
const QUEUE: usize = 64 * 1024;
/// How long written lines may sit in the buffer before they reach the file.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// What one request leaves in the log.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// When the request arrived.
    #[serde(skip)]
    pub time: SystemTime,
    /// The client's address as the proxy saw it.
    pub client: Option<IpAddr>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'static str,
    /// Request method.
    pub method: String,
    /// Host header (or URI authority).
    pub host: String,
    /// Path and query.
    pub path: String,
    /// Status sent to the client (0: none was sent).
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Arrival to end of response, seconds.
    pub duration: f64,
    /// Matched workload.
    pub workload: Option<String>,
    /// `primary` or `shadow`.
    pub pool: Option<&'static str>,
    /// The upstream that served.
    pub upstream: Option<String>,
    /// `rolled_back` while the workload's rollback cooldown runs.
    pub guard: Option<&'static str>,
    /// Referer (combined format only).
    #[serde(skip)]
    pub referer: Option<String>,
    /// User-Agent (combined format only).
    #[serde(skip)]
    pub user_agent: Option<String>,
}

enum Msg {
    Line(Box<Record>),
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
        match self.tx.try_send(Msg::Line(Box::new(record))) {
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
        let mut dirty = false;
        loop {
            let msg = match self.rx.recv_timeout(FLUSH_EVERY) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            };
            if self.reopen.swap(false, Ordering::Relaxed) {
                self.sink.reopen();
            }
            match msg {
                Some(Msg::Line(record)) => {
                    line.clear();
                    render(&record, self.format, &mut line);
                    if let Err(e) = self.sink.writer().write_all(&line) {
                        tracing::warn!(error = %e, "access log write failed");
                    }
                    dirty = true;
                }
                Some(Msg::Flush(ack)) => {
                    self.flush();
                    dirty = false;
                    let _waiter_may_be_gone = ack.try_send(());
                }
                // Quiet for a moment: put what is buffered on disk.
                None if dirty => {
                    self.flush();
                    dirty = false;
                }
                None => {}
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.sink.writer().flush() {
            tracing::warn!(error = %e, "access log flush failed");
        }
    }
}

/// One line, newline included.
fn render(r: &Record, format: AccessLogFormat, out: &mut Vec<u8>) {
    let time = Utc::from_system(r.time);
    match format {
        AccessLogFormat::Json => {
            #[derive(Serialize)]
            struct Line<'a> {
                time: String,
                #[serde(flatten)]
                record: &'a Record,
            }
            let line = Line {
                time: time.rfc3339_millis(),
                record: r,
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
                escape(&r.method),
                escape(&r.path),
                r.protocol,
                r.status,
                r.bytes,
                quoted(&r.referer),
                quoted(&r.user_agent),
                r.duration,
                r.workload.as_deref().unwrap_or("-"),
                r.pool.unwrap_or("-"),
                r.upstream.as_deref().unwrap_or("-"),
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
        Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_601_600_250),
            client: Some("10.1.2.3".parse().expect("ip")),
            scheme: "https",
            protocol: "HTTP/2.0",
            method: "GET".into(),
            host: "api.example.com".into(),
            path: "/v1/x?\"q\"\n".into(),
            status: 200,
            bytes: 42,
            duration: 0.0031,
            workload: Some("api".into()),
            pool: Some("shadow"),
            upstream: Some("10.0.0.9:8080".into()),
            guard: None,
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
