//! The status page for people: an overview that stays usable at 1,000 workloads and a detail
//! page per workload. Self-contained HTML (no CDN); a few lines of inline script filter rows.

mod chart;
mod detail;
mod overview;

pub use detail::detail;
pub use overview::index;

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.1}"))
}

/// The document head every page shares; `refresh_s` reloads the page (the URL, filter
/// included, is kept).
fn head(title: &str, refresh_s: u32) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content={refresh_s}>\
         <title>{}</title><style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}}\
         .muted{{color:#888}}h2{{margin-top:1.5em}}input{{font:inherit;padding:4px 8px;width:22em}}\
         .state-rolled_back{{color:#c0392b;font-weight:600}}.state-ramping,.state-migrated,\
         .state-provisioning,.state-returning{{color:#1f4e79;font-weight:600}}</style></head><body>",
        esc(title)
    )
}

/// How urgently a phase wants a look: the overview lists the urgent first.
fn attention(state: &str) -> u8 {
    match state {
        "rolled_back" => 0,
        "ramping" | "provisioning" | "returning" => 1,
        "migrated" => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_attribute_quotes() {
        assert_eq!(esc(r#"<a href="x">&"#), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }

    #[test]
    fn rolled_back_comes_before_moving_before_migrated_before_idle() {
        let mut s = ["idle", "migrated", "ramping", "rolled_back"];
        s.sort_by_key(|s| attention(s));
        assert_eq!(s, ["rolled_back", "ramping", "migrated", "idle"]);
    }
}
