//! A workload's header rules, compiled once per config into header names and values so the
//! request path only clones them.

use config::HeaderRules;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};

/// Rules ready to apply: remove, then set, then add.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

/// Either direction's header block.
pub trait HeaderBlock {
    /// Removes every occurrence.
    fn remove(&mut self, name: &HeaderName);
    /// Replaces every occurrence with one.
    fn set(&mut self, name: &HeaderName, value: &HeaderValue);
    /// Appends one occurrence.
    fn add(&mut self, name: &HeaderName, value: &HeaderValue);
}

macro_rules! header_block {
    ($t:ty) => {
        impl HeaderBlock for $t {
            fn remove(&mut self, name: &HeaderName) {
                let _previous = self.remove_header(name);
            }
            fn set(&mut self, name: &HeaderName, value: &HeaderValue) {
                // Names and values were validated when compiled; these cannot fail.
                let _ok = self.insert_header(name.clone(), value.clone());
            }
            fn add(&mut self, name: &HeaderName, value: &HeaderValue) {
                let _ok = self.append_header(name.clone(), value.clone());
            }
        }
    };
}
header_block!(RequestHeader);
header_block!(ResponseHeader);

impl CompiledRules {
    /// Compiles validated rules; a name or value the http crate refuses is skipped (config
    /// validation already refuses everything it would).
    pub fn compile(rules: &HeaderRules) -> Self {
        let pair = |(n, v): &(String, String)| {
            Some((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        };
        CompiledRules {
            remove: rules
                .remove
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect(),
            set: rules.set.iter().filter_map(pair).collect(),
            add: rules.add.iter().filter_map(pair).collect(),
        }
    }

    /// Whether applying changes nothing.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Applies the rules to a header block.
    pub fn apply(&self, h: &mut impl HeaderBlock) {
        for n in &self.remove {
            h.remove(n);
        }
        for (n, v) in &self.set {
            h.set(n, v);
        }
        for (n, v) in &self.add {
            h.add(n, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_then_set_then_add() {
        let rules = CompiledRules::compile(&HeaderRules {
            remove: vec!["server".into()],
            set: vec![(
                "strict-transport-security".into(),
                "max-age=63072000".into(),
            )],
            add: vec![("vary".into(), "Accept-Encoding".into())],
        });
        let mut resp = ResponseHeader::build(200, None).expect("header");
        resp.insert_header("server", "backend/1.0").expect("insert");
        resp.insert_header("strict-transport-security", "max-age=1")
            .expect("insert");
        resp.insert_header("vary", "Origin").expect("insert");
        rules.apply(&mut resp);
        assert!(resp.headers.get("server").is_none());
        assert_eq!(
            resp.headers
                .get_all("strict-transport-security")
                .iter()
                .count(),
            1
        );
        assert_eq!(
            resp.headers["strict-transport-security"],
            "max-age=63072000"
        );
        assert_eq!(resp.headers.get_all("vary").iter().count(), 2);
    }
}
