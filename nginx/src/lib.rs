//! `umbra-proxy convert-nginx`: an nginx site config as an Umbra config.
//!
//! What routes the same way is translated (hosts from `server_name`, `path_prefix` from a
//! prefix `location`, `primary` from the upstream's servers, `backup` servers as the shadow
//! pool, `grpc_pass` as an HTTP/2 upstream); so is the HTTPS edge (`listen ... ssl` and
//! `ssl_certificate`s as `[proxy.tls]`, plain `listen`s as `[proxy] listen`, the
//! `return 301 https://$host$request_uri` server as `redirect_https`, `proxy_set_header`,
//! `add_header` and `proxy_hide_header` with nginx's all-or-nothing inheritance as header rules,
//! `set_real_ip_from` as `[proxy.forwarded] trusted_proxies`). What only tunes behaviour, or
//! what Umbra does by itself, becomes a comment; what would route or answer differently (regex
//! locations, rewrites, URI-replacing `proxy_pass`, access control, client certificates, files
//! served by nginx itself) is refused with its file and line.

mod directives;
mod group;
mod headers;
mod inherit;
mod listen;
mod load;
mod location;
mod model;
mod redirect;
mod render;
mod server;
mod syntax;
mod tls;
mod translate;
mod upstream;

use std::path::Path;

pub use load::LoadError;
pub use model::{
    Certificate, Edge, HeaderRules, Note, Problem, Translation, UpstreamProtocol, Workload,
};
pub use syntax::{Location, SyntaxError};

/// A translated config.
#[derive(Clone, Debug)]
pub struct Conversion {
    /// The TOML: `[proxy]` (when nginx named listeners, certificates or forwarded headers)
    /// and `[[workloads]]`.
    pub toml: String,
    /// Every note, one line each (`file:line: message`), for the terminal.
    pub notes: Vec<String>,
    /// The translation itself.
    pub translation: Translation,
}

/// Why a config was not translated.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Unreadable, not nginx syntax, or a broken `include`.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Parts that Umbra would route or answer differently.
    #[error("{} cannot be translated:\n{}", count(.0.len()), lines(.0))]
    Untranslatable(Vec<Problem>),
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 thing".into()
    } else {
        format!("{n} things")
    }
}

fn lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the nginx config at `path` (following `include`s) and translates it.
pub fn convert(path: &Path) -> Result<Conversion, ConvertError> {
    convert_text(path, &load::read(path)?)
}

/// Translates nginx config `text` read from `path`, which names it in notes and errors and
/// anchors relative `include`s (those are still read from disk).
pub fn convert_text(path: &Path, text: &str) -> Result<Conversion, ConvertError> {
    let config = load::load_text(path, text)?;
    let translation = translate::translate(path, &config).map_err(ConvertError::Untranslatable)?;
    let mut notes: Vec<String> = Vec::new();
    let every = translation
        .notes
        .iter()
        .chain(translation.workloads.iter().flat_map(|w| w.notes.iter()));
    for n in every {
        let line = match &n.at {
            Some(at) => format!("{at}: {}", n.message),
            None => n.message.clone(),
        };
        // Workloads sharing a server or upstream carry the same notes; say each once.
        if !notes.contains(&line) {
            notes.push(line);
        }
    }
    Ok(Conversion {
        toml: render::render(path, &translation),
        notes,
        translation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config in the shape distributions ship (`/etc/nginx/nginx.conf` with sites in
    /// `conf.d`), translated and then validated by Umbra's own config loader.
    #[test]
    fn a_distribution_style_config_round_trips_through_umbras_validator() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
        std::fs::write(
            dir.path().join("nginx.conf"),
            "user www-data;\nworker_processes auto;\npid /run/nginx.pid;\n\n\
             events {\n    worker_connections 768;\n}\n\n\
             http {\n    sendfile on;\n    keepalive_timeout 65;\n    proxy_read_timeout 30s;\n\
             \x20   access_log /var/log/nginx/access.log;\n    gzip on;\n\n    include conf.d/*.conf;\n}\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("conf.d/shop.conf"),
            "upstream checkout_backend {\n    least_conn;\n    keepalive 32;\n\
             \x20   server 127.0.0.1:9001 max_fails=3 fail_timeout=10s;\n    server 127.0.0.1:9002;\n\
             \x20   server 127.0.0.1:9009 backup;\n}\n\n\
             server {\n    listen 80;\n    server_name shop.example.com www.shop.example.com;\n\n\
             \x20   location / {\n        proxy_pass http://checkout_backend;\n\
             \x20       proxy_set_header Host $host;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }\n\n\
             \x20   location /api/ {\n        proxy_pass http://127.0.0.1:9100/api/;\n        proxy_http_version 1.1;\n    }\n}\n",
        )
        .expect("write");
        let c = convert(&dir.path().join("nginx.conf")).expect("converts");
        assert_eq!(c.translation.workloads.len(), 2);
        assert!(
            c.notes.iter().any(|n| n.contains("proxy_read_timeout")),
            "{:#?}",
            c.notes
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("shop.conf:4") && n.contains("max_fails")),
            "{:#?}",
            c.notes
        );
        let config = config::parse(&dir.path().join("umbra.toml"), &c.toml)
            .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        let names: Vec<_> = config
            .workloads
            .iter()
            .map(|w| w.name.as_str().to_string())
            .collect();
        assert_eq!(names, vec!["checkout_backend", "127-0-0-1"]);
        let checkout = &config.workloads[0];
        assert_eq!(checkout.hosts.len(), 2);
        assert_eq!(checkout.primary.len(), 2);
        assert_eq!(
            checkout.shadow,
            vec!["127.0.0.1:9009".parse().expect("addr")]
        );
        assert_eq!(config.workloads[1].path_prefix, "/api/");
    }

    #[test]
    fn every_problem_is_listed_with_its_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("nginx.conf");
        std::fs::write(
            &path,
            "server {\n  location ~ ^/x { proxy_pass http://a:1; }\n  location /y { return 204; }\n}\n",
        )
        .expect("write");
        let e = convert(&path).expect_err("untranslatable").to_string();
        assert!(e.starts_with("2 things cannot be translated:"), "{e}");
        assert!(e.contains("nginx.conf:2: `location ~ ^/x`"), "{e}");
        assert!(e.contains("nginx.conf:3: `return`"), "{e}");
    }

    #[test]
    fn text_is_translated_as_if_read_from_its_path() {
        let text = "server {\n  server_name a.test;\n  location / { proxy_pass http://127.0.0.1:9001; }\n}\n";
        let c = convert_text(Path::new("/etc/nginx/site.conf"), text).expect("converts");
        assert_eq!(c.translation.workloads.len(), 1);
        let e = convert_text(Path::new("/nonexistent/nginx.conf"), "include site.conf;\n")
            .expect_err("missing include");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/nginx.conf:1: included file"),
            "{e}"
        );
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_a_panic() {
        let e = convert(Path::new("/nonexistent/nginx.conf")).expect_err("missing");
        assert!(
            e.to_string()
                .contains("/nonexistent/nginx.conf: cannot read"),
            "{e}"
        );
    }
}
