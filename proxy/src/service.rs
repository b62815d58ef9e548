//! The request path, in the order a request meets it: route -> admission -> pool -> upstream
//! -> response accounting. Decisions come from `policies`; this file only gathers facts.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use policies::{PoolKind, Priority, SessionFacts, admit};
use rand::Rng;

use crate::access_log::Record;
use crate::choice::{Draws, choose};
use crate::clock::now_ms;
use crate::drain::Active;
use crate::forwarded::{self, Hop, Incoming};
use crate::metrics::HttpVersion;
use crate::path;
use crate::retry::{self, Attempt, Failure, Retry};
use crate::state::Shared;
use crate::table::{RuntimeSettings, StickyRule, bare_host};
use crate::upstream::{InFlight, Upstream};
use crate::workload::Workload;

/// The Pingora application.
pub struct UmbraProxy {
    shared: Arc<Shared>,
}

impl UmbraProxy {
    /// The proxy over shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        UmbraProxy { shared }
    }
}

/// What one request carries between phases.
pub struct RequestCtx {
    started: Instant,
    /// Counts the request for the graceful drain until the context is dropped.
    _active: Active,
    /// Arrived over TLS.
    tls: bool,
    /// The client asked to upgrade the connection (WebSocket ...).
    upgrade_requested: bool,
    /// The upstream agreed (101): from here on it is a tunnel, not a request.
    upgraded: bool,
    /// The upstream holding the tunnel (its in-flight slot was released at the 101).
    tunnel: Option<Arc<Upstream>>,
    /// The answer carried a gRPC status other than OK (in headers or trailers).
    grpc_failed: bool,
    workload: Option<Arc<Workload>>,
    priority: Priority,
    pool: PoolKind,
    attempt: Option<InFlight>,
    attempts: u8,
    body_bytes: u64,
    max_body: u64,
    pool_header: bool,
    ejection_ms: u64,
    /// Stateful workloads: the rule whose cookie pins this session to the pool it lands in.
    pin: Option<Arc<StickyRule>>,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

const NOT_FOUND: &[u8] = b"no workload matches this host and path\n";
const HEADERS_TOO_LARGE: &[u8] = b"request header fields too large\n";
const TOO_LARGE: &[u8] = b"request body too large\n";
const SHED: &[u8] = b"overloaded, retry later\n";

async fn respond(
    session: &mut Session,
    status: u16,
    body: &'static [u8],
    retry_after: Option<u64>,
) -> Result<()> {
    let mut h = ResponseHeader::build(status, Some(3))?;
    h.insert_header(http::header::CONTENT_TYPE, "text/plain")?;
    h.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    if let Some(secs) = retry_after {
        h.insert_header(http::header::RETRY_AFTER, secs)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(body)), true)
        .await
}

/// What a stateful request's cookies say: its pin, and whether it has an application session.
fn session_facts(req: &pingora_http::RequestHeader, rule: &StickyRule) -> SessionFacts {
    let mut facts = SessionFacts {
        pinned: None,
        existing_session: false,
    };
    for header in req.headers.get_all(http::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let (name, value) = pair.trim().split_once('=').unwrap_or((pair.trim(), ""));
            if name == rule.pin_cookie {
                facts.pinned = match value {
                    "primary" => Some(PoolKind::Primary),
                    "shadow" => Some(PoolKind::Shadow),
                    _ => facts.pinned,
                };
            } else if rule.session_cookie.as_deref() == Some(name) {
                facts.existing_session = true;
            }
        }
    }
    facts
}

/// A healthy upstream from `preferred`, or from the other pool when `preferred` has none;
/// one other than `avoid` whenever either pool has one.
fn pick(
    w: &Workload,
    preferred: PoolKind,
    now: u64,
    draws: (u32, u32),
    avoid: Option<&Upstream>,
) -> Option<(PoolKind, Arc<Upstream>)> {
    let kinds = [preferred, preferred.other()];
    avoid
        .and_then(|avoid| {
            kinds.into_iter().find_map(|kind| {
                let pool = w.pool(kind);
                pool.pick_avoiding(now, draws, avoid)
                    .map(|u| (kind, Arc::clone(u)))
            })
        })
        .or_else(|| {
            kinds
                .into_iter()
                .find_map(|kind| w.pool(kind).pick(now, draws).map(|u| (kind, Arc::clone(u))))
        })
}

/// Two uniform draws for the balancer and one for the pool split, from a thread-local RNG.
fn draws() -> Draws {
    let mut rng = rand::thread_rng();
    Draws {
        upstream: (rng.r#gen(), rng.r#gen()),
        split: rng.gen_range(0..1_000_000),
    }
}

#[async_trait]
impl ProxyHttp for UmbraProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            _active: self.shared.drain.enter(),
            tls: false,
            upgrade_requested: false,
            upgraded: false,
            tunnel: None,
            grpc_failed: false,
            workload: None,
            priority: Priority::Normal,
            pool: PoolKind::Primary,
            attempt: None,
            attempts: 0,
            body_bytes: 0,
            max_body: u64::MAX,
            pool_header: false,
            ejection_ms: 0,
            pin: None,
        }
    }

    /// Without a compression module Pingora skips a per-request module pass
    /// (../shared/PERF-NOTES.md: measurably cheaper).
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let table = self.shared.table.load();
        let settings = &table.settings;
        ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        self.shared
            .metrics
            .request_version(HttpVersion::of(session.req_header().version));
        if !self.draining(session) && session.get_keepalive().is_some() {
            // The idle wait before this connection's next request, for a connection the client
            // keeps (HTTP/1.1 without `Connection: close`, HTTP/1.0 with keep-alive; h2 has
            // its own idle timeout).
            session.set_keepalive(Some(settings.keepalive_secs));
        }
        if header_bytes(&session.req_header().headers) > settings.max_header_bytes {
            respond(session, 431, HEADERS_TOO_LARGE, None).await?;
            return Ok(true);
        }
        if let Some(why) = ambiguous(session.req_header(), session.is_http2()) {
            // Refused rather than guessed at; the connection is closed.
            session.set_keepalive(None);
            respond(session, 400, why.as_bytes(), None).await?;
            return Ok(true);
        }
        if let Cow::Owned(normal) = path::normalize(session.req_header().uri.path()) {
            // Route on, and forward, the path the upstream will serve.
            let uri = with_path(&session.req_header().uri, &normal)?;
            session.req_header_mut().set_uri(uri);
        }
        // Answer pipelined requests in order instead of dropping all but the first.
        session.as_downstream_mut().set_pipelining_enabled(true);
        let req = session.req_header();
        let host = request_host(req);
        let Some(route) = table.route(bare_host(host), req.uri.path()) else {
            self.shared.metrics.unrouted();
            respond(session, 404, NOT_FOUND, None).await?;
            return Ok(true);
        };
        if !ctx.tls && route.workload.edge().redirect_https {
            let location = https_location(host, req, settings);
            self.shared.metrics.https_redirect();
            redirect(session, &location).await?;
            return Ok(true);
        }
        if session.is_upgrade_req() {
            // A tunnel lives as long as both ends keep it: no idle read deadline on it.
            ctx.upgrade_requested = true;
            session.set_read_timeout(None);
        }
        let req = session.req_header();
        let declared_len = req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_len.is_some_and(|n| n > settings.max_request_body_bytes) {
            respond(session, 413, TOO_LARGE, None).await?;
            return Ok(true);
        }

        let w = &route.workload;
        let facts = route.sticky.as_ref().map(|rule| session_facts(req, rule));
        let choice = choose(w, facts, now_ms(), draws());
        let budget = settings
            .admission
            .upstream_max_in_flight
            .saturating_mul(choice.healthy);
        if !admit(
            route.priority,
            choice.in_flight,
            budget,
            &settings.admission.shares,
        ) {
            w.metrics().shed(route.priority);
            let retry = settings.admission.retry_after.as_secs().max(1);
            respond(session, 503, SHED, Some(retry)).await?;
            return Ok(true);
        }
        // Reserve the upstream now, right after admission, so concurrent requests see it in
        // the in-flight count they are admitted against.
        if let Some((chosen_pool, upstream)) = choice.upstream {
            ctx.pool = chosen_pool;
            ctx.attempt = Some(InFlight::new(upstream));
        } else {
            ctx.pool = choice.pool;
        }

        ctx.workload = Some(Arc::clone(w));
        ctx.priority = route.priority;
        ctx.pin = if choice.pin {
            route.sticky.clone()
        } else {
            None
        };
        ctx.max_body = settings.max_request_body_bytes;
        ctx.pool_header = settings.pool_header;
        ctx.ejection_ms = settings.health.ejection.as_millis() as u64;
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(b) = body {
            ctx.body_bytes += b.len() as u64;
            if ctx.body_bytes > ctx.max_body {
                return Error::e_explain(ErrorType::HTTPStatus(413), "request body too large");
            }
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        ctx.attempts += 1;
        if ctx.attempts == 1
            && let Some(reserved) = &ctx.attempt
        {
            return Ok(peer_for(reserved.upstream(), ctx.upgrade_requested));
        }
        let Some(w) = ctx.workload.clone() else {
            return Error::e_explain(ErrorType::InternalError, "upstream_peer without a route");
        };
        // A retry after a failure prefers the other pool, and another upstream than the one
        // that failed (still held when the failure did not eject it: a reused connection).
        let (preferred, failed) = if ctx.attempts > 1 {
            let failed = ctx.attempt.take().map(|a| Arc::clone(a.upstream()));
            (ctx.pool.other(), failed)
        } else {
            (ctx.pool, None)
        };
        match pick(&w, preferred, now_ms(), draws().upstream, failed.as_deref()) {
            Some((pool, upstream)) => {
                ctx.pool = pool;
                let peer = peer_for(&upstream, ctx.upgrade_requested);
                ctx.attempt = Some(InFlight::new(upstream));
                Ok(peer)
            }
            None => Error::e_explain(
                ErrorType::HTTPStatus(503),
                "no healthy upstream in either pool",
            ),
        }
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(w) = &ctx.workload else {
            return Ok(());
        };
        let table = self.shared.table.load();
        let settings = &table.settings.forwarded;
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let trusted =
            peer.is_some_and(|ip| settings.trusted_proxies.iter().any(|c| c.contains(ip)));
        let scheme = if ctx.tls { "https" } else { "http" };
        let out = if !trusted && !settings.rfc7239 {
            // The common case at the edge: nothing the client sent is kept, so there is
            // nothing to join or format but the peer's address (what `outgoing` would say).
            ForwardedValues {
                xff: forwarded::peer_value(peer),
                proto: HeaderValue::from_static(scheme),
                host: host_value(session.req_header())?,
                forwarded: None,
            }
        } else {
            let out = forwarded::outgoing(
                Hop {
                    peer,
                    trusted,
                    scheme,
                    host: request_host(session.req_header()),
                },
                Incoming {
                    xff: joined(&upstream_request.headers, &X_FORWARDED_FOR),
                    proto: joined(&upstream_request.headers, &X_FORWARDED_PROTO),
                    host: joined(&upstream_request.headers, &X_FORWARDED_HOST),
                    forwarded: joined(&upstream_request.headers, &FORWARDED),
                },
                settings.rfc7239,
            );
            ForwardedValues {
                xff: header_value(out.xff)?,
                proto: header_value(out.proto)?,
                host: header_value(out.host)?,
                forwarded: out.forwarded.map(header_value).transpose()?,
            }
        };
        if !session.is_http2() && !origin_form(upstream_request.raw_path()) {
            // An absolute-form target (RFC 9112 3.2.2), which Pingora keeps verbatim after
            // checking that its authority agrees with Host: upstreams get the origin form, as
            // from any client, with that Host.
            let path_only = upstream_request.uri.clone();
            upstream_request.set_uri(path_only);
        }
        if upstream_request.headers.get(http::header::HOST).is_none() {
            // HTTP/1.0 may come without Host; HTTP/1.1 upstreams require one. Like nginx's
            // default ($proxy_host), name the upstream.
            if let Some(attempt) = &ctx.attempt {
                upstream_request.insert_header(http::header::HOST, attempt.upstream().label())?;
            }
        }
        upstream_request.insert_header("x-forwarded-for", out.xff)?;
        upstream_request.insert_header("x-forwarded-proto", out.proto)?;
        upstream_request.insert_header("x-forwarded-host", out.host)?;
        match out.forwarded {
            Some(f) => upstream_request.insert_header("forwarded", f)?,
            None if !trusted => {
                let _dropped = upstream_request.remove_header(&FORWARDED);
            }
            None => {}
        }
        let edge = w.edge();
        if !edge.request.is_empty() {
            edge.request.apply(upstream_request);
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if upstream_response.status == http::StatusCode::SWITCHING_PROTOCOLS
            && ctx.upgrade_requested
        {
            // From here on the connection is a tunnel: it no longer holds an admission slot
            // nor feeds the guard's latency window (its "latency" is the session's length).
            ctx.upgraded = true;
            ctx.tunnel = ctx.attempt.take().map(|a| Arc::clone(a.upstream()));
            self.shared.metrics.upgraded_open.inc();
        }
        if grpc_failed(&upstream_response.headers) {
            ctx.grpc_failed = true;
        }
        Ok(())
    }

    fn upstream_response_trailer_filter(
        &self,
        _session: &mut Session,
        upstream_trailers: &mut HeaderMap,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if grpc_failed(upstream_trailers) {
            ctx.grpc_failed = true;
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let now = now_ms();
        if let Some(attempt) = ctx.attempt.take() {
            attempt.upstream().eject(now + ctx.ejection_ms);
        }
        if let Some(w) = &ctx.workload {
            // A failed attempt is the pool's failure even when the retry hides it from the client.
            w.record_failed_attempt(ctx.pool, now);
        }
        let idempotent = session.req_header().method.is_idempotent();
        e.set_retry(idempotent && ctx.attempts < 2);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let from_upstream = e.esource() == &ErrorSource::Upstream;
        let failure = match e.etype() {
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
                if from_upstream =>
            {
                Failure::Died
            }
            ErrorType::ReadTimedout if from_upstream => Failure::Silent,
            _ => Failure::Other,
        };
        let now = now_ms();
        let current = ctx.attempt.as_ref().map(|a| Arc::clone(a.upstream()));
        let verdict = retry::judge(&Attempt {
            failure,
            replayable: session.req_header().method.is_idempotent()
                && !session.as_ref().retry_buffer_truncated(),
            reused: client_reused,
            answered: session.as_ref().response_written().is_some(),
            attempts: ctx.attempts,
            healthy_elsewhere: match (&ctx.workload, &current) {
                (Some(w), Some(u)) => healthy_elsewhere(w, u, now),
                _ => false,
            },
        });
        if verdict.eject {
            if let Some(u) = &current {
                u.eject(now + ctx.ejection_ms);
            }
            // A retried attempt is the pool's failure even when the retry hides it from the
            // client; one that is not retried is counted when the request is logged.
            if let (Some(w), Retry::Yes) = (&ctx.workload, verdict.retry) {
                w.record_failed_attempt(ctx.pool, now);
            }
        }
        match verdict.retry {
            Retry::Yes => e.set_retry(true),
            Retry::No => e.set_retry(false),
            Retry::IfReused => e.retry.decide_reuse(client_reused),
        }
        e
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if self.draining(session) {
            // Tell a keep-alive client to reconnect (`Connection: close`) instead of closing
            // under a request it may be sending; its next connection reaches a live process.
            session.set_keepalive(None);
        }
        if let Some(w) = &ctx.workload {
            let edge = w.edge();
            if !edge.response.is_empty() {
                edge.response.apply(resp);
            }
        }
        if ctx.pool_header && (ctx.attempt.is_some() || ctx.upgraded) {
            resp.insert_header("x-umbra-pool", ctx.pool.as_str())?;
        }
        if let (Some(rule), true) = (&ctx.pin, ctx.attempt.is_some() || ctx.upgraded) {
            // The pool that finally served (after any failover) is the one the session keeps.
            resp.append_header(http::header::SET_COOKIE, rule.set_cookie(ctx.pool).clone())?;
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match (e.etype(), e.esource()) {
            (ErrorType::HTTPStatus(code), _) => *code,
            (
                ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout,
                ErrorSource::Upstream,
            ) => 504,
            (ErrorType::ConnectTimedout, _) => 504,
            (_, ErrorSource::Upstream) => 502,
            (
                ErrorType::ConnectRefused | ErrorType::ConnectNoRoute | ErrorType::ConnectError,
                _,
            ) => 502,
            (
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
                ErrorSource::Downstream,
            ) => 0,
            (_, ErrorSource::Downstream) => 400,
            _ => 500,
        };
        if code > 0
            && let Err(err) = session.respond_error(code).await
        {
            tracing::debug!(error = %err, "could not send the error response");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(log) = &self.shared.access_log {
            log.log(self.record(session, ctx, log.wants_agent()));
        }
        if ctx.upgraded {
            self.shared.metrics.upgraded_open.dec();
        }
        let Some(w) = ctx.workload.take() else {
            return;
        };
        let elapsed = ctx.started.elapsed();
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        let upstream_failed = e.is_some_and(|e| {
            *e.esource() == ErrorSource::Upstream
                || matches!(
                    e.etype(),
                    ErrorType::ConnectTimedout | ErrorType::ConnectRefused
                )
        });
        let status = if status == 0 && upstream_failed {
            502
        } else {
            status
        };
        w.metrics()
            .pool(ctx.pool)
            .observe(status, elapsed.as_secs_f64());
        if let Some(attempt) = ctx.attempt.take() {
            let error = upstream_failed || status >= 500 || ctx.grpc_failed;
            w.record(ctx.pool, now_ms(), elapsed, error);
            attempt
                .upstream()
                .observe_latency(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, error: &Error) -> bool {
        // Shed and no-upstream answers are counted in metrics; logging each would flood.
        matches!(error.etype(), ErrorType::HTTPStatus(503 | 413))
    }
}

impl UmbraProxy {
    /// Whether this process is shutting down or handing over to a new binary: Pingora's flag
    /// is set when its listeners stop, ours from the first shutdown or upgrade phase.
    fn draining(&self, session: &Session) -> bool {
        session.is_process_shutting_down() || self.shared.drain.is_draining()
    }

    /// The access log's record of a finished request.
    fn record(&self, session: &Session, ctx: &RequestCtx, agent: bool) -> Record {
        let req = session.req_header();
        let header = |name| {
            agent
                .then(|| req.headers.get(name).and_then(|v| v.to_str().ok()))
                .flatten()
                .map(str::to_string)
        };
        let elapsed = ctx.started.elapsed();
        Record {
            time: SystemTime::now() - elapsed,
            client: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            tls: ctx.tls,
            version: HttpVersion::of(req.version),
            method: req.method.clone(),
            host: request_host(req).to_string(),
            path: req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path().to_string(), |p| p.as_str().to_string()),
            status: session.response_written().map_or(0, |r| r.status.as_u16()),
            bytes: session.body_bytes_sent() as u64,
            duration: elapsed,
            route: ctx.workload.as_ref().map(|w| (Arc::clone(w), ctx.pool)),
            upstream: ctx
                .attempt
                .as_ref()
                .map(|a| a.upstream())
                .or(ctx.tunnel.as_ref())
                .map(Arc::clone),
            rolled_back: ctx.workload.as_ref().is_some_and(|w| w.is_rolled_back()),
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
        }
    }
}

/// Whether an upstream of `w` other than `current`, in either pool, takes traffic now.
fn healthy_elsewhere(w: &Workload, current: &Arc<Upstream>, now: u64) -> bool {
    [PoolKind::Primary, PoolKind::Shadow]
        .into_iter()
        .any(|kind| {
            w.pool(kind)
                .members()
                .iter()
                .any(|u| !Arc::ptr_eq(u, current) && u.healthy(now))
        })
}

/// The prebuilt peer of `upstream`; a tunnel's copy has no read deadline, since a WebSocket may
/// stay quiet for as long as both ends like.
fn peer_for(upstream: &Upstream, tunnel: bool) -> Box<HttpPeer> {
    let mut peer = Box::new(upstream.peer().clone());
    if tunnel {
        peer.options.read_timeout = None;
    }
    peer
}

/// The request's host: the Host header, else the URI's authority (HTTP/2).
fn request_host(req: &RequestHeader) -> &str {
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// Why an HTTP/1 request is too ambiguous to forward, if it is: HTTP/1.1 without a host (RFC
/// 9112 3.2: MUST be refused). Pingora refuses the framing tricks itself (repeated or signed
/// lengths, unknown codings, folded lines, space before a colon, Host disagreeing with an
/// absolute-form target) and reads Content-Length beside Transfer-Encoding by the latter alone,
/// closing the connection after the answer (RFC 9112 6.1).
fn ambiguous(req: &RequestHeader, http2: bool) -> Option<&'static str> {
    let h = &req.headers;
    if !http2 && req.version == http::Version::HTTP_11 && !h.contains_key(http::header::HOST) {
        return Some("HTTP/1.1 request without Host\n");
    }
    None
}

/// Whether a request target is in origin form (`/path?query`) or `*`.
fn origin_form(target: &[u8]) -> bool {
    target.starts_with(b"/") || target == b"*"
}

/// `uri` with its path replaced by `path` (query, scheme and authority kept).
fn with_path(uri: &http::Uri, path: &str) -> Result<http::Uri> {
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut b = http::Uri::builder();
    if let Some(scheme) = uri.scheme() {
        b = b.scheme(scheme.clone());
    }
    if let Some(authority) = uri.authority() {
        b = b.authority(authority.clone());
    }
    b.path_and_query(pq)
        .build()
        .map_err(|e| Error::because(ErrorType::InvalidHTTPHeader, "normalised path", e))
}

/// Size of a header block as it travels in HTTP/1.1 (`name: value\r\n` per field).
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

/// The forwarded headers' values for one upstream request.
struct ForwardedValues {
    xff: HeaderValue,
    proto: HeaderValue,
    host: HeaderValue,
    forwarded: Option<HeaderValue>,
}

/// A header value from text built for it, refused as `insert_header` would refuse it.
fn header_value(text: String) -> Result<HeaderValue> {
    HeaderValue::try_from(text)
        .map_err(|e| Error::because(ErrorType::InvalidHTTPHeader, "forwarded header value", e))
}

/// [`request_host`] as a header value: the Host header itself when it is text (no copy).
fn host_value(req: &RequestHeader) -> Result<HeaderValue> {
    match req.headers.get(http::header::HOST) {
        Some(v) if v.to_str().is_ok() => Ok(v.clone()),
        _ => header_value(request_host(req).to_string()),
    }
}

/// Every occurrence of a header joined with ", "; `None` when absent or not text.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    Some(values.fold(first.to_string(), |mut acc, v| {
        acc.push_str(", ");
        acc.push_str(v);
        acc
    }))
}

/// Whether a header block carries `grpc-status` other than 0 (OK).
fn grpc_failed(headers: &HeaderMap) -> bool {
    headers
        .get(&GRPC_STATUS)
        .is_some_and(|v| v.as_bytes() != b"0")
}

/// `https://host[:port]/path?query` for a plain-HTTP request.
fn https_location(host: &str, req: &RequestHeader, settings: &RuntimeSettings) -> String {
    let host = bare_host(host);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
    match settings.https_port {
        Some(port) => format!("https://{host}:{port}{path}"),
        None => format!("https://{host}{path}"),
    }
}

/// 308 Permanent Redirect: unlike 301, the method and body are kept.
async fn redirect(session: &mut Session, location: &str) -> Result<()> {
    let mut h = ResponseHeader::build(308, Some(3))?;
    h.insert_header(http::header::LOCATION, location)?;
    h.insert_header(http::header::CONTENT_LENGTH, 0)?;
    session.write_response_header(Box::new(h), true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_status_other_than_ok_is_a_failure() {
        let mut h = HeaderMap::new();
        assert!(!grpc_failed(&h));
        h.insert("grpc-status", http::HeaderValue::from_static("0"));
        assert!(!grpc_failed(&h));
        h.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert!(grpc_failed(&h));
    }

    #[test]
    fn redirect_locations() {
        let req = RequestHeader::build("GET", b"/a/b?x=1", None).expect("request");
        let mut settings = crate::table::tests::settings();
        assert_eq!(
            https_location("shop.test:8080", &req, &settings),
            "https://shop.test/a/b?x=1"
        );
        settings.https_port = Some(8443);
        assert_eq!(
            https_location("shop.test", &req, &settings),
            "https://shop.test:8443/a/b?x=1"
        );
        assert_eq!(
            https_location("[::1]:80", &req, &settings),
            "https://[::1]:8443/a/b?x=1"
        );
    }

    #[test]
    fn joined_headers_and_sizes() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", http::HeaderValue::from_static("1.1.1.1"));
        h.append("x-forwarded-for", http::HeaderValue::from_static("2.2.2.2"));
        assert_eq!(
            joined(&h, &X_FORWARDED_FOR).as_deref(),
            Some("1.1.1.1, 2.2.2.2")
        );
        assert_eq!(joined(&h, &FORWARDED), None);
        assert_eq!(header_bytes(&h), 2 * ("x-forwarded-for".len() + 7 + 4));
    }
}
