//! Writes a translation as Umbra TOML (`[proxy]`, `[[workloads]]`) with notes as comments.

use std::fmt::Write as _;
use std::path::Path;

use super::model::{Edge, HeaderRules, Note, Translation, UpstreamProtocol};

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A note as one comment line (a note never spans lines in the output).
fn comment(note: &Note) -> String {
    let text = note.message.replace(['\n', '\r'], " ");
    match &note.at {
        Some(at) => format!(
            "# note {}: {text}",
            at.to_string().replace(['\n', '\r'], " ")
        ),
        None => format!("# note: {text}"),
    }
}

/// One address as a string, several as a list (`listen = "a"` or `listen = ["a", "b"]`).
fn one_or_many(items: &[String]) -> String {
    match items {
        [one] => quote(one),
        _ => list(items),
    }
}

/// `{ "name" = "value", ... }`.
fn inline_table(pairs: &[(String, String)]) -> String {
    let entries: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {}", quote(k), quote(v)))
        .collect();
    format!("{{ {} }}", entries.join(", "))
}

/// The TOML for `translation`, read from `source`.
pub fn render(source: &Path, translation: &Translation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Umbra config translated from {} by `umbra-proxy convert-nginx`.",
        source.display().to_string().replace(['\n', '\r'], " ")
    );
    out.push_str(if translation.edge.is_empty() {
        "# Add a [proxy] table (listen, admin_listen, admin_token), then validate with\n"
    } else {
        "# Review [proxy] (add admin_listen, admin_token as needed), then validate with\n"
    });
    out.push_str(
        "# `umbra-proxy --check --config <this file>`. Notes mark what did not carry over exactly.\n",
    );
    for note in &translation.notes {
        out.push_str(&comment(note));
        out.push('\n');
    }
    edge(&mut out, &translation.edge);
    for w in &translation.workloads {
        out.push_str("\n[[workloads]]\n");
        for s in &w.sources {
            let _ = writeln!(out, "# from {}", s.replace(['\n', '\r'], " "));
        }
        for note in &w.notes {
            out.push_str(&comment(note));
            out.push('\n');
        }
        let _ = writeln!(out, "name = {}", quote(&w.name));
        if w.hosts.is_empty() {
            out.push_str("# no hosts: answers any host (nginx's catch-all server)\n");
        } else {
            let _ = writeln!(out, "hosts = {}", list(&w.hosts));
        }
        let _ = writeln!(out, "path_prefix = {}", quote(&w.path_prefix));
        let _ = writeln!(out, "primary = {}", list(&w.primary));
        if !w.shadow.is_empty() {
            let _ = writeln!(out, "shadow = {}", list(&w.shadow));
        }
        if w.redirect_https {
            out.push_str("redirect_https = true\n");
        }
        if w.upstream_protocol != UpstreamProtocol::H1 {
            let _ = writeln!(
                out,
                "upstream_protocol = {}",
                quote(w.upstream_protocol.as_str())
            );
        }
        header_rules(&mut out, "request_headers", &w.request_headers);
        header_rules(&mut out, "response_headers", &w.response_headers);
    }
    out
}

/// `[proxy]`, `[proxy.tls]` and `[proxy.forwarded]`, each only when it has something to hold.
fn edge(out: &mut String, edge: &Edge) {
    if !edge.listen.is_empty() || !edge.tls_listen.is_empty() {
        out.push_str("\n[proxy]\n");
        if edge.listen.is_empty() {
            out.push_str("# no plain-HTTP listener: nginx listened with TLS only\n");
        } else {
            let _ = writeln!(out, "listen = {}", one_or_many(&edge.listen));
        }
    }
    if !edge.tls_listen.is_empty() {
        out.push_str("\n[proxy.tls]\n");
        let _ = writeln!(out, "listen = {}", one_or_many(&edge.tls_listen));
        out.push_str(
            "# chosen by SNI against each certificate's names; the first is the default\n",
        );
        out.push_str("certificates = [\n");
        for c in &edge.certificates {
            let _ = writeln!(
                out,
                "    {{ cert = {}, key = {} }},",
                quote(&c.cert),
                quote(&c.key)
            );
        }
        out.push_str("]\n");
    }
    if !edge.trusted_proxies.is_empty() || edge.rfc7239 {
        out.push_str("\n[proxy.forwarded]\n");
        if !edge.trusted_proxies.is_empty() {
            let _ = writeln!(out, "trusted_proxies = {}", list(&edge.trusted_proxies));
        }
        if edge.rfc7239 {
            out.push_str("rfc7239 = true\n");
        }
    }
}

/// `[workloads.<table>]` for the current workload, when the rules change anything.
fn header_rules(out: &mut String, table: &str, rules: &HeaderRules) {
    if rules.is_empty() {
        return;
    }
    let _ = writeln!(out, "[workloads.{table}]");
    if !rules.set.is_empty() {
        let _ = writeln!(out, "set = {}", inline_table(&rules.set));
    }
    if !rules.add.is_empty() {
        let _ = writeln!(out, "add = {}", inline_table(&rules.add));
    }
    if !rules.remove.is_empty() {
        let _ = writeln!(out, "remove = {}", list(&rules.remove));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("\u{1}"), "\"\\u0001\"");
    }
}
