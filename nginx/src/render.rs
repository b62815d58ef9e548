//! Writes translated workloads as `[[workloads]]` TOML, with every note as a comment beside
//! the workload it concerns.

use std::fmt::Write as _;
use std::path::Path;

use super::translate::{Note, Translation};

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

/// The TOML for `translation`, read from `source`.
pub fn render(source: &Path, translation: &Translation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Umbra workloads translated from {} by `umbra-proxy convert-nginx`.",
        source.display().to_string().replace(['\n', '\r'], " ")
    );
    out.push_str(
        "# Add a [proxy] table (listen, admin_listen, admin_token), then validate with\n\
         # `umbra-proxy --check --config <this file>`. Notes mark what did not carry over exactly.\n",
    );
    for note in &translation.notes {
        out.push_str(&comment(note));
        out.push('\n');
    }
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
    }
    out
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
