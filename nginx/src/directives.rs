//! nginx directives sorted by what Umbra does with them: refuse, ignore, or point elsewhere.

use super::model::Note;
use super::syntax::Directive;

/// Directives whose effect Umbra would silently drop, opening what nginx kept closed.
pub(crate) const ACCESS_CONTROL: &[&str] = &[
    "allow",
    "deny",
    "auth_basic",
    "auth_request",
    "auth_jwt",
    "satisfy",
    "limit_req",
    "limit_conn",
    "limit_except",
    "valid_referers",
    "secure_link",
];

/// Directives that answer or rewrite a request in nginx itself.
pub(crate) const ANSWERS_ITSELF: &[&str] = &["return", "rewrite", "if", "try_files", "error_page"];

/// Directives with no routing effect that Umbra needs no counterpart for (they only concern
/// nginx's own buffering, logging and upstream HTTP version; Umbra speaks HTTP/1.1 upstream).
pub(crate) const HARMLESS: &[&str] = &[
    "proxy_http_version",
    "proxy_buffering",
    "proxy_buffers",
    "proxy_buffer_size",
    "proxy_busy_buffers_size",
    "proxy_request_buffering",
    "proxy_redirect",
    "proxy_pass_request_headers",
    "proxy_pass_request_body",
    "access_log",
    "error_log",
    "log_not_found",
    "server_tokens",
    "charset",
    "default_type",
    "root",
    "index",
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "keepalive_timeout",
    "keepalive_requests",
    "gzip",
    "gzip_types",
    "gzip_proxied",
    "gzip_vary",
    "gzip_min_length",
    "gzip_comp_level",
];

/// Settings Umbra has proxy-wide: where the value goes instead.
pub(crate) fn proxy_wide_hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "proxy_connect_timeout" | "grpc_connect_timeout" => "[proxy.timeouts] connect",
        "proxy_read_timeout" | "grpc_read_timeout" => "[proxy.timeouts] read",
        "proxy_send_timeout" | "grpc_send_timeout" => "[proxy.timeouts] write",
        "client_max_body_size" => "[proxy] max_request_body_bytes (in bytes)",
        "proxy_next_upstream" | "proxy_next_upstream_tries" | "proxy_next_upstream_timeout" => {
            "[proxy.health] (umbra ejects failing members and retries connect failures itself)"
        }
        _ => return None,
    })
}

/// The note for a directive Umbra has proxy-wide, `hint` saying where.
pub(crate) fn hint_note(d: &Directive, hint: &str) -> Note {
    Note::at(
        &d.at,
        format!(
            "`{} {}` is not translated: umbra has it proxy-wide as {hint}",
            d.name,
            d.args.join(" ")
        ),
    )
}
