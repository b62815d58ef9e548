//! Bearer-token check for mutating admin calls.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::Shared;

/// `Ok` when the request carries the configured token; otherwise the response to send:
/// 401 (missing or wrong token) or 403 (no token configured: the admin API is read-only).
// The refusal is the handler's response itself; boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
pub fn require_token(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let config = shared.config.load();
    let Some(token) = config.proxy.admin_token.as_ref() else {
        return Err(super::handlers::error(
            StatusCode::FORBIDDEN,
            "proxy.admin_token is not configured: the admin API is read-only",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(candidate) if token.matches(candidate.trim()) => Ok(()),
        _ => {
            let mut resp =
                super::handlers::error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Err(resp.into_response())
        }
    }
}
