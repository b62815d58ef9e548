//! nginx `upstream` blocks: their servers as Umbra's primary (and `backup` as shadow) pools.

use super::model::Note;
use super::syntax::{Directive, Location};
use super::translate::Walk;

/// An upstream block as read.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    pub at: Location,
    pub primary: Vec<String>,
    pub backup: Vec<String>,
    pub notes: Vec<Note>,
    /// Whether some location proxies to it.
    pub used: bool,
}

/// Reads `upstream NAME { ... }` into `walk.upstreams`.
pub(crate) fn read_upstream(walk: &mut Walk, d: &Directive, inner: &[Directive]) {
    let [name] = d.args.as_slice() else {
        walk.problem(&d.at, "`upstream` takes exactly one name");
        return;
    };
    let mut u = Upstream {
        at: d.at.clone(),
        primary: Vec::new(),
        backup: Vec::new(),
        notes: Vec::new(),
        used: false,
    };
    let mut weights = Vec::new();
    for s in inner {
        match s.name.as_str() {
            "server" => {
                let Some(addr) = s.args.first() else {
                    walk.problem(&s.at, "`server` without an address");
                    continue;
                };
                let addr = match member_address(addr, 80) {
                    Ok(a) => a,
                    Err(m) => {
                        walk.problem(&s.at, m);
                        continue;
                    }
                };
                let (mut backup, mut down, mut weight) = (false, false, 1u32);
                for p in &s.args[1..] {
                    let (key, value) = p.split_once('=').unwrap_or((p.as_str(), ""));
                    match key {
                        "backup" => backup = true,
                        "down" => down = true,
                        "weight" => match value.parse() {
                            Ok(w) => weight = w,
                            Err(_) => walk.problem(&s.at, format!("`{p}`: weight is not a number")),
                        },
                        "max_fails" | "fail_timeout" => u.notes.push(Note {
                            at: Some(s.at.clone()),
                            message: format!(
                                "`{p}` is not translated: umbra's passive ejection and active checks are proxy-wide ([proxy.health])"
                            ),
                        }),
                        "max_conns" => u.notes.push(Note {
                            at: Some(s.at.clone()),
                            message: format!(
                                "`{p}` is not translated: umbra limits in-flight requests per member proxy-wide ([proxy.admission] upstream_max_in_flight)"
                            ),
                        }),
                        _ => u.notes.push(Note {
                            at: Some(s.at.clone()),
                            message: format!("server parameter `{p}` is not translated"),
                        }),
                    }
                }
                if down {
                    u.notes.push(Note {
                        at: Some(s.at.clone()),
                        message: format!("{addr} is marked `down` in nginx; left out"),
                    });
                } else if backup {
                    u.backup.push(addr);
                } else {
                    weights.push(weight);
                    u.primary.push(addr);
                }
            }
            "keepalive" | "keepalive_timeout" | "keepalive_requests" | "keepalive_time"
            | "zone" => {}
            "least_conn" | "random" => u.notes.push(Note {
                at: Some(s.at.clone()),
                message: format!("`{}`: umbra chooses among a pool's members itself", s.name),
            }),
            "ip_hash" | "hash" | "sticky" => u.notes.push(Note {
                at: Some(s.at.clone()),
                message: format!(
                    "`{}` is not translated: umbra does not pin a client to one member; if the application keeps sessions in memory, set `stateless = false` and `session_cookie`",
                    s.name
                ),
            }),
            other => u.notes.push(Note {
                at: Some(s.at.clone()),
                message: format!("upstream directive `{other}` is not translated"),
            }),
        }
    }
    if weights.iter().any(|w| *w != weights[0]) {
        u.notes.push(Note {
            at: Some(d.at.clone()),
            message: format!(
                "nginx weights {} are not kept: umbra spreads a pool's requests evenly over its healthy members",
                weights.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    if u.primary.is_empty() {
        walk.problem(
            &d.at,
            format!("upstream {name} has no server that is neither `backup` nor `down`: umbra needs a primary pool"),
        );
    }
    if walk.upstreams.insert(name.clone(), u).is_some() {
        walk.problem(&d.at, format!("upstream {name} is defined twice"));
    }
}

/// `host:port`, `[v6]:port` or `host` (`default_port` then: 80 for `http://`, as nginx assumes).
pub(crate) fn member_address(addr: &str, default_port: u16) -> Result<String, String> {
    if addr.starts_with("unix:") {
        return Err(format!(
            "`{addr}`: unix sockets are not supported as members; umbra connects over TCP"
        ));
    }
    if addr.contains('$') {
        return Err(format!(
            "`{addr}`: variables in addresses cannot be translated"
        ));
    }
    let has_port = if addr.starts_with('[') {
        addr.contains("]:")
    } else {
        addr.contains(':')
    };
    let full = if has_port {
        addr.to_string()
    } else {
        format!("{addr}:{default_port}")
    };
    let (host, port) = full.rsplit_once(':').unwrap_or((&full, ""));
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("`{addr}` is not a host:port address"));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_nginx_default_port() {
        assert_eq!(member_address("app1", 80), Ok("app1:80".into()));
        assert_eq!(member_address("app1", 443), Ok("app1:443".into()));
        assert_eq!(
            member_address("10.0.0.1:8080", 80),
            Ok("10.0.0.1:8080".into())
        );
        assert_eq!(member_address("[::1]:81", 80), Ok("[::1]:81".into()));
        assert_eq!(member_address("[::1]", 80), Ok("[::1]:80".into()));
        assert!(member_address("unix:/run/app.sock", 80).is_err());
        assert!(member_address("10.0.0.1:0", 80).is_err());
    }
}
