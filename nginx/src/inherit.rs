//! nginx's inheritance of list directives from `http` to `server` to `location`: all or nothing.

use std::collections::BTreeMap;

use super::syntax::Directive;

/// Directives nginx keeps as a list per block and inherits from the enclosing block only when
/// the inner block has none of that directive. One `proxy_set_header` in a location therefore
/// drops every `proxy_set_header` of its server (the classic "my Host header vanished" bug),
/// which the translation must reproduce to send what nginx sent.
const LISTS: &[&str] = &[
    "proxy_set_header",
    "grpc_set_header",
    "add_header",
    "proxy_hide_header",
    "grpc_hide_header",
    "ssl_certificate",
    "ssl_certificate_key",
];

/// The list directives in effect in one block.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Inherited {
    lists: BTreeMap<&'static str, Vec<Directive>>,
}

impl Inherited {
    /// What a block nested in one with `self` in effect ends up with: per directive, its own
    /// occurrences if it has any, else `self`'s.
    pub(crate) fn enter(&self, block: &[Directive]) -> Inherited {
        let lists = LISTS
            .iter()
            .map(|&name| {
                let own: Vec<Directive> =
                    block.iter().filter(|d| d.name == name).cloned().collect();
                let effective = if own.is_empty() {
                    self.get(name).to_vec()
                } else {
                    own
                };
                (name, effective)
            })
            .collect();
        Inherited { lists }
    }

    /// The `name` directives in effect, in the order written.
    pub(crate) fn get(&self, name: &str) -> &[Directive] {
        self.lists.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Whether `name` is one of the inherited list directives (read through [`Inherited`], not
/// one by one).
pub(crate) fn is_list(name: &str) -> bool {
    LISTS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;
    use std::path::Path;

    fn values(scope: &Inherited, name: &str) -> Vec<String> {
        scope.get(name).iter().map(|d| d.args.join(" ")).collect()
    }

    #[test]
    fn an_inner_block_inherits_a_list_only_when_it_has_none_of_it() {
        let http = parse(
            Path::new("t.conf"),
            "proxy_set_header Host $host;\nproxy_set_header X-A a;\nadd_header X-Frame-Options DENY;\n\
             server {\n  proxy_set_header X-B b;\n\
               location /one/ { proxy_pass http://a; }\n\
               location /two/ { proxy_set_header X-C c; add_header X-D d; }\n}\n",
        )
        .expect("parses");
        let top = Inherited::default().enter(&http);
        assert_eq!(
            values(&top, "proxy_set_header"),
            vec!["Host $host", "X-A a"]
        );

        let server = http.iter().find(|d| d.name == "server").expect("server");
        let inner = server.block.as_deref().expect("block");
        let in_server = top.enter(inner);
        // The server sets one header of its own: the http level's two are not sent any more.
        assert_eq!(values(&in_server, "proxy_set_header"), vec!["X-B b"]);
        // `add_header` is its own list: the server has none, so it inherits the http one.
        assert_eq!(
            values(&in_server, "add_header"),
            vec!["X-Frame-Options DENY"]
        );

        let location = |n: usize| {
            let locs: Vec<_> = inner.iter().filter(|d| d.name == "location").collect();
            in_server.enter(locs[n].block.as_deref().expect("block"))
        };
        let one = location(0);
        assert_eq!(values(&one, "proxy_set_header"), vec!["X-B b"]);
        assert_eq!(values(&one, "add_header"), vec!["X-Frame-Options DENY"]);
        let two = location(1);
        assert_eq!(values(&two, "proxy_set_header"), vec!["X-C c"]);
        assert_eq!(values(&two, "add_header"), vec!["X-D d"]);
        assert!(two.get("proxy_hide_header").is_empty());
    }
}
