//! `ssl_*` directives: certificate/key pairs, and notes for TLS tuning Umbra has fixed.

use std::path::Path;

use super::inherit::Inherited;
use super::model::{Certificate, Note};
use super::syntax::Directive;
use super::translate::Walk;

/// What applies instead of nginx's protocol and cipher tuning.
const MODERN: &str = "TLS 1.2 and 1.3 with modern cipher suites only";
/// What applies instead of nginx's session cache and ticket settings.
const SESSIONS: &str = "session caching and tickets are the TLS library's own";

/// Handles one `ssl_*` directive other than the certificate and key (any level). Returns
/// whether `d` was one; each kind is noted once for the whole config.
pub(crate) fn ssl_directive(walk: &mut Walk, d: &Directive) -> bool {
    let name = d.name.as_str();
    let value = d.args.first().map(String::as_str).unwrap_or_default();
    let fixed = |kind: &str, what: &str| {
        Note::at(
            &d.at,
            format!(
                "`{kind}` has no equivalent: umbra-proxy's fixed modern defaults apply ({what})"
            ),
        )
    };
    match name {
        "ssl_certificate" | "ssl_certificate_key" | "ssl" => {}
        "ssl_protocols" | "ssl_ciphers" | "ssl_prefer_server_ciphers" | "ssl_ecdh_curve"
        | "ssl_dhparam" | "ssl_conf_command" => walk.note_once(name, fixed(name, MODERN)),
        n if n.starts_with("ssl_session_") => {
            walk.note_once("ssl_session_*", fixed("ssl_session_*", SESSIONS))
        }
        "ssl_verify_client" => match value {
            "off" => {}
            "on" => walk.problem(
                &d.at,
                "`ssl_verify_client on` (client certificates) cannot be translated: umbra-proxy does not ask for client certificates and would let every client through",
            ),
            _ => walk.note_once(
                name,
                Note::at(
                    &d.at,
                    format!("`ssl_verify_client {value}` is not translated: umbra-proxy does not ask for client certificates"),
                ),
            ),
        },
        // Only meaningful with client certificates or stapling, which are noted themselves.
        "ssl_client_certificate" | "ssl_verify_depth" | "ssl_crl" | "ssl_trusted_certificate"
        | "ssl_stapling_verify" => {}
        "ssl_stapling" | "ssl_early_data" | "ssl_reject_handshake" if value == "off" => {}
        "ssl_password_file" => walk.note_once(
            name,
            Note::at(
                &d.at,
                "`ssl_password_file` is not translated: umbra-proxy reads unencrypted keys only; decrypt the key files",
            ),
        ),
        "ssl_reject_handshake" => walk.note_once(
            name,
            Note::at(
                &d.at,
                "`ssl_reject_handshake on` is not translated: umbra-proxy completes handshakes for unknown names with its first (default) certificate",
            ),
        ),
        n if n.starts_with("ssl_") => walk.note_once(
            n,
            Note::at(&d.at, format!("`{n} {}` is not translated", d.args.join(" "))),
        ),
        _ => return false,
    }
    true
}

/// The certificate/key pairs in effect in a server block (its own `ssl_certificate`s and
/// `ssl_certificate_key`s, else the http level's, each list inherited on its own as nginx does),
/// paired in order. Relative paths are resolved against `base`, as nginx resolves them against
/// its config directory. A certificate without a key (or a key without one) is a problem.
pub(crate) fn certificates(walk: &mut Walk, scope: &Inherited, base: &Path) -> Vec<Certificate> {
    let mut path = |d: &Directive| -> Option<String> {
        let [p] = d.args.as_slice() else {
            walk.problem(&d.at, format!("`{}` takes exactly one file", d.name));
            return None;
        };
        if p.contains('$') || p.starts_with("data:") || p.starts_with("engine:") {
            walk.problem(
                &d.at,
                format!("`{} {p}` is not a file: umbra-proxy needs each certificate and key as a PEM file, listed in [proxy.tls] certificates", d.name),
            );
            return None;
        }
        Some(base.join(p).display().to_string())
    };
    let certs: Vec<Option<String>> = scope.get("ssl_certificate").iter().map(&mut path).collect();
    let keys: Vec<Option<String>> = scope
        .get("ssl_certificate_key")
        .iter()
        .map(&mut path)
        .collect();
    let unpaired = |walk: &mut Walk, d: &Directive, missing: &str| {
        walk.problem(
            &d.at,
            format!(
                "`{} {}` has no matching `{missing}` (nginx pairs them in order)",
                d.name,
                d.args.join(" ")
            ),
        );
    };
    for d in scope.get("ssl_certificate").iter().skip(keys.len()) {
        unpaired(walk, d, "ssl_certificate_key");
    }
    for d in scope.get("ssl_certificate_key").iter().skip(certs.len()) {
        unpaired(walk, d, "ssl_certificate");
    }
    certs
        .into_iter()
        .zip(keys)
        .filter_map(|pair| match pair {
            (Some(cert), Some(key)) => Some(Certificate { cert, key }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn scope(text: &str) -> Inherited {
        Inherited::default().enter(&parse(Path::new("t.conf"), text).expect("parses"))
    }

    #[test]
    fn pairs_in_order_with_paths_from_the_config_directory() {
        let mut walk = Walk::default();
        let certs = certificates(
            &mut walk,
            &scope(
                "ssl_certificate /etc/ssl/rsa.pem;\nssl_certificate ecdsa.pem;\n\
                 ssl_certificate_key /etc/ssl/rsa.key;\nssl_certificate_key ecdsa.key;\n",
            ),
            Path::new("/etc/nginx"),
        );
        assert!(walk.problems.is_empty(), "{:?}", walk.problems);
        assert_eq!(
            certs,
            vec![
                Certificate {
                    cert: "/etc/ssl/rsa.pem".into(),
                    key: "/etc/ssl/rsa.key".into()
                },
                Certificate {
                    cert: "/etc/nginx/ecdsa.pem".into(),
                    key: "/etc/nginx/ecdsa.key".into()
                },
            ]
        );
    }

    #[test]
    fn a_certificate_without_a_key_is_a_problem_at_its_line() {
        let mut walk = Walk::default();
        let certs = certificates(
            &mut walk,
            &scope("ssl_certificate a.pem;\nssl_certificate_key a.key;\nssl_certificate b.pem;\n"),
            Path::new("/etc/nginx"),
        );
        assert_eq!(certs.len(), 1);
        let p: Vec<String> = walk.problems.iter().map(ToString::to_string).collect();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "t.conf:3: `ssl_certificate b.pem` has no matching `ssl_certificate_key`"
            ),
            "{p:?}"
        );
    }

    #[test]
    fn tuning_is_noted_once_per_kind_and_client_certificates_are_refused() {
        let mut walk = Walk::default();
        for d in parse(
            Path::new("t.conf"),
            "ssl_protocols TLSv1.2 TLSv1.3;\nssl_protocols TLSv1.3;\nssl_session_cache shared:SSL:10m;\n\
             ssl_session_timeout 1d;\nssl_verify_client on;\nssl_stapling off;\n",
        )
        .expect("parses")
        {
            assert!(ssl_directive(&mut walk, &d));
        }
        let notes: Vec<&str> = walk.notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(notes.len(), 2, "{notes:#?}");
        assert!(
            notes[0].starts_with("`ssl_protocols` has no equivalent"),
            "{notes:?}"
        );
        assert!(
            notes[1].starts_with("`ssl_session_*` has no equivalent"),
            "{notes:?}"
        );
        assert_eq!(walk.problems.len(), 1);
        assert_eq!(walk.problems[0].at.line, 5);
    }
}
