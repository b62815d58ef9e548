//! Proxied locations grouped into workloads (one per target, prefix and settings) and named.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Note, Workload};
use super::translate::{Route, Settings, Target, Walk};

type Key = (Target, String, bool, Settings);

/// Routes with the same target, prefix and settings become one workload answering all their
/// hosts (a catch-all server's stay apart, since "any host" absorbs every other name).
pub(crate) fn group(walk: &Walk, routes: Vec<Route>) -> Vec<Workload> {
    let mut order: Vec<Key> = Vec::new();
    let mut merged: BTreeMap<Key, (Route, Vec<String>)> = BTreeMap::new();
    for mut r in routes {
        let mut key = (
            r.target.clone(),
            r.prefix.clone(),
            r.hosts.is_empty(),
            r.settings.clone(),
        );
        // Two server blocks for the same names (often one plain, one TLS) that differ in
        // headers: Umbra cannot tell its listeners apart, so they must share one workload.
        let twin = order.iter().find(|k| {
            k.0 == key.0
                && k.1 == key.1
                && k.3 != key.3
                && same_hosts(&merged[*k].0.hosts, &r.hosts)
        });
        if let Some(twin) = twin.cloned() {
            let first = merged[&twin].1.first().cloned().unwrap_or_default();
            r.notes.push(Note {
                at: None,
                message: format!(
                    "{} answers the same hosts and prefix as {first} but with other headers, redirect or protocol; umbra serves both from one workload with the settings of the first",
                    r.source
                ),
            });
            key = twin;
        }
        match merged.get_mut(&key) {
            Some((m, sources)) => {
                for h in r.hosts {
                    if !m.hosts.contains(&h) {
                        m.hosts.push(h);
                    }
                }
                sources.push(r.source);
                m.notes.extend(r.notes);
            }
            None => {
                order.push(key.clone());
                let sources = vec![r.source.clone()];
                merged.insert(key, (r, sources));
            }
        }
    }
    let base = |t: &Target| match t {
        Target::Upstream(n) => sanitize(n),
        Target::Direct(a) => sanitize(a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h)),
    };
    // A target with several prefixes gets the prefix in its names; settings alone only a number.
    let mut prefixes: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (t, prefix, _, _) in &order {
        prefixes.entry(base(t)).or_default().insert(prefix);
    }
    let with_path: BTreeSet<String> = prefixes
        .into_iter()
        .filter(|(_, p)| p.len() > 1)
        .map(|(b, _)| b)
        .collect();
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    for key in &order {
        let Some((r, sources)) = merged.remove(key) else {
            continue;
        };
        let b = base(&r.target);
        let mut name = if with_path.contains(&b) {
            let path = sanitize(r.prefix.trim_matches('/'));
            let path = if path == "workload" {
                "root".to_string()
            } else {
                path
            };
            truncate(&format!("{b}-{path}"))
        } else {
            b
        };
        if taken.contains(&name) {
            let stem = name.clone();
            let mut i = 2;
            while taken.contains(&name) {
                // The number must survive the length limit, or a long stem comes back unchanged.
                let number = format!("-{i}");
                name = truncate_to(&stem, MAX_NAME - number.len()) + &number;
                i += 1;
            }
        }
        taken.insert(name.clone());
        let (primary, shadow, mut notes) = match &r.target {
            Target::Upstream(u) => match walk.upstreams.get(u) {
                Some(up) => {
                    let mut notes = up.notes.clone();
                    if !up.backup.is_empty() {
                        notes.push(Note {
                            at: Some(up.at.clone()),
                            message: "the `backup` servers are the shadow pool at weight 0: nginx sent them traffic only when every primary server failed; umbra moves traffic to the shadow pool when the controller (or shadow_weight) says so".into(),
                        });
                    }
                    (up.primary.clone(), up.backup.clone(), notes)
                }
                None => continue,
            },
            Target::Direct(addr) => (vec![addr.clone()], Vec::new(), Vec::new()),
        };
        for n in r.notes {
            // Locations of one server (or servers sharing an http level) repeat inherited notes.
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
        let s = r.settings;
        out.push(Workload {
            name,
            hosts: r.hosts,
            path_prefix: r.prefix,
            primary,
            shadow,
            redirect_https: s.redirect_https,
            upstream_protocol: s.protocol,
            request_headers: s.request,
            response_headers: s.response,
            sources,
            notes,
        });
    }
    out
}

fn same_hosts(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// A valid workload name from any text: lowercase, `[a-z0-9_-]`, starting alphanumeric.
fn sanitize(text: &str) -> String {
    let mut s: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_start_matches(['-', '_']).trim_end_matches('-');
    if s.is_empty() {
        "workload".to_string()
    } else {
        truncate(s)
    }
}

/// The longest workload name the config accepts.
const MAX_NAME: usize = 63;

fn truncate(s: &str) -> String {
    truncate_to(s, MAX_NAME)
}

/// At most `max` characters of `s` (ASCII after `sanitize`), without a trailing `-`.
fn truncate_to(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: the numbered name was cut back to the taken one, so the search for a
    /// free name never ended.
    #[test]
    fn long_names_that_collide_still_get_numbers() {
        let long = "a".repeat(70);
        let text = format!(
            "server {{\n  location /{long}/x {{ proxy_pass http://127.0.0.1:1; }}\n  \
             location /{long}/y {{ proxy_pass http://127.0.0.1:1; }}\n  \
             location /{long}/z {{ proxy_pass http://127.0.0.1:1; }}\n}}\n"
        );
        let c = crate::convert_text(std::path::Path::new("nginx.conf"), &text).expect("converts");
        let names: Vec<&str> = c
            .translation
            .workloads
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|n| n.len() <= 63), "{names:?}");
        assert!(
            names[1].ends_with("-2") && names[2].ends_with("-3"),
            "{names:?}"
        );
        assert_eq!(names[0][..61], names[1][..61]);
    }

    #[test]
    fn names_are_valid_workload_names() {
        assert_eq!(sanitize("Shop_Backend.v2"), "shop_backend-v2");
        assert_eq!(sanitize("--x"), "x");
        assert_eq!(sanitize("..."), "workload");
        assert_eq!(sanitize(&"a".repeat(80)).len(), MAX_NAME);
    }
}
