//! The request path, in the order a request meets it: route -> admission -> pool -> upstream
//! -> response accounting. Decisions come from `policies`; this file only gathers facts.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::ResponseHeader;
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use policies::{PoolKind, Priority, SessionFacts, admit, choose_pool, choose_pool_sticky};
use rand::Rng;

use crate::clock::now_ms;
use crate::state::Shared;
use crate::table::{StickyRule, bare_host};
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
    workload: Option<Arc<Workload>>,
    priority: Priority,
    pool: PoolKind,
    attempt: Option<InFlight>,
    attempts: u8,
    body_bytes: u64,
    max_body: u64,
    pool_header: bool,
    ejection_ms: u64,
    /// Stateful workloads: the cookie that pins this session to the pool it lands in.
    pin_cookie: Option<String>,
}

const NOT_FOUND: &[u8] = b"no workload matches this host and path\n";
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

/// A healthy upstream from `preferred`, or from the other pool when `preferred` has none.
fn pick(
    w: &Workload,
    preferred: PoolKind,
    now: u64,
    draws: (u32, u32),
) -> Option<(PoolKind, Arc<Upstream>)> {
    [preferred, preferred.other()]
        .into_iter()
        .find_map(|kind| w.pool(kind).pick(now, draws).map(|u| (kind, Arc::clone(u))))
}

/// Two uniform draws for the balancer and one for the pool split, from a thread-local RNG.
fn draws() -> (u32, u32, u32) {
    let mut rng = rand::thread_rng();
    (rng.r#gen(), rng.r#gen(), rng.gen_range(0..1_000_000))
}

#[async_trait]
impl ProxyHttp for UmbraProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            workload: None,
            priority: Priority::Normal,
            pool: PoolKind::Primary,
            attempt: None,
            attempts: 0,
            body_bytes: 0,
            max_body: u64::MAX,
            pool_header: false,
            ejection_ms: 0,
            pin_cookie: None,
        }
    }

    /// Without a compression module Pingora skips a per-request module pass
    /// (../shared/PERF-NOTES.md: measurably cheaper).
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let table = self.shared.table.load();
        let req = session.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.host())
            .unwrap_or("");
        let Some(route) = table.route(bare_host(host), req.uri.path()) else {
            self.shared.metrics.unrouted();
            respond(session, 404, NOT_FOUND, None).await?;
            return Ok(true);
        };
        let settings = &table.settings;
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
        let now = now_ms();
        let (a, b, split) = draws();
        let (mut pool, pin) = match &route.sticky {
            None => (choose_pool(w.weight_ppm(), split), None),
            Some(rule) => {
                let facts = session_facts(req, rule);
                let (pool, pin) = choose_pool_sticky(w.weight_ppm(), split, facts);
                (pool, pin.then(|| rule.pin_cookie.clone()))
            }
        };
        if !w.pool(pool).has_healthy(now) && w.pool(pool.other()).has_healthy(now) {
            pool = pool.other();
        }
        let (in_flight, healthy) = w.pool(pool).occupancy(now);
        let budget = settings
            .admission
            .upstream_max_in_flight
            .saturating_mul(healthy);
        if !admit(
            route.priority,
            in_flight,
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
        if let Some((chosen_pool, upstream)) = pick(w, pool, now, (a, b)) {
            ctx.pool = chosen_pool;
            ctx.attempt = Some(InFlight::new(upstream));
        } else {
            ctx.pool = pool;
        }

        ctx.workload = Some(Arc::clone(w));
        ctx.priority = route.priority;
        ctx.pin_cookie = pin;
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
        if ctx.attempts == 1 {
            if let Some(reserved) = &ctx.attempt {
                return Ok(Box::new(reserved.upstream().peer().clone()));
            }
        }
        let Some(w) = ctx.workload.clone() else {
            return Error::e_explain(ErrorType::InternalError, "upstream_peer without a route");
        };
        // A retry after a connect failure prefers the other pool.
        let preferred = if ctx.attempts > 1 {
            ctx.pool.other()
        } else {
            ctx.pool
        };
        let (a, b, _) = draws();
        match pick(&w, preferred, now_ms(), (a, b)) {
            Some((pool, upstream)) => {
                ctx.pool = pool;
                let peer = Box::new(upstream.peer().clone());
                ctx.attempt = Some(InFlight::new(upstream));
                Ok(peer)
            }
            None => Error::e_explain(
                ErrorType::HTTPStatus(503),
                "no healthy upstream in either pool",
            ),
        }
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
        let idempotent = session.req_header().method.is_idempotent();
        if !idempotent || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
            return e;
        }
        // A fresh connection that the upstream closed or reset before the client saw a byte of
        // the answer (an instance killed mid-request, say) gets the same treatment as a refused
        // connect: ejected, counted against its pool, and the request tried once on the other
        // pool. A reused keep-alive connection closing is routine (idle timeouts) and keeps
        // Pingora's retry-on-reuse without blaming the upstream. Timeouts are not retried: that
        // would double a slow request.
        let died = matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        ) && e.esource() == &ErrorSource::Upstream;
        if died && !client_reused && session.as_ref().response_written().is_none() {
            let now = now_ms();
            if let Some(attempt) = &ctx.attempt {
                attempt.upstream().eject(now + ctx.ejection_ms);
            }
            if let Some(w) = &ctx.workload {
                w.record_failed_attempt(ctx.pool, now);
            }
            e.set_retry(ctx.attempts < 2);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if ctx.pool_header && ctx.attempt.is_some() {
            resp.insert_header("x-umbra-pool", ctx.pool.as_str())?;
        }
        if let (Some(name), Some(_)) = (&ctx.pin_cookie, &ctx.attempt) {
            // The pool that finally served (after any failover) is the one the session keeps.
            let cookie = format!(
                "{name}={}; Path=/; HttpOnly; SameSite=Lax",
                ctx.pool.as_str()
            );
            resp.append_header(http::header::SET_COOKIE, cookie)?;
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
        if code > 0 {
            if let Err(err) = session.respond_error(code).await {
                tracing::debug!(error = %err, "could not send the error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
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
            let error = upstream_failed || status >= 500;
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
