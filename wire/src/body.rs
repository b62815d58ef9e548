//! What the proxy accepts (`PUT .../shadow-weight`, `PUT .../pools/shadow`) and its checks, apart from HTTP so that tests and fuzzers run the handlers' own code.

use std::net::SocketAddr;

use policies::{ShadowWeight, WeightError};
use serde::{Deserialize, Serialize};

/// A pool is a handful of instances; a thousand is already a mistake, not a pool.
pub const MAX_POOL_MEMBERS: usize = 1024;

/// `PUT /v1/workloads/{name}/shadow-weight`: `{"weight": 0.25}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightBody {
    /// The shadow pool's share of traffic, `0..=1`.
    pub weight: f64,
}

impl WeightBody {
    /// The weight, refused outside `0..=1`.
    pub fn shadow_weight(&self) -> Result<ShadowWeight, WeightError> {
        ShadowWeight::new(self.weight)
    }
}

/// `PUT /v1/workloads/{name}/pools/shadow`: `{"upstreams": ["127.0.0.1:7101"]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolBody {
    /// The new members, `ip:port` each.
    pub upstreams: Vec<String>,
}

/// Why a shadow pool body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolBodyError {
    /// More members than any pool should have.
    #[error("at most {MAX_POOL_MEMBERS} upstreams")]
    TooMany,
    /// The same address twice.
    #[error("{0} is listed twice")]
    Duplicate(SocketAddr),
    /// Not `ip:port` (names are not resolved here).
    #[error("{0:?} is not an \"ip:port\" address")]
    NotAnAddress(String),
}

impl PoolBody {
    /// The members' addresses, in the order given.
    pub fn addresses(&self) -> Result<Vec<SocketAddr>, PoolBodyError> {
        if self.upstreams.len() > MAX_POOL_MEMBERS {
            return Err(PoolBodyError::TooMany);
        }
        let mut addrs = Vec::with_capacity(self.upstreams.len());
        for text in &self.upstreams {
            match text.parse::<SocketAddr>() {
                Ok(a) if !addrs.contains(&a) => addrs.push(a),
                Ok(a) => return Err(PoolBodyError::Duplicate(a)),
                Err(_) => return Err(PoolBodyError::NotAnAddress(text.clone())),
            }
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(upstreams: &[&str]) -> PoolBody {
        PoolBody {
            upstreams: upstreams.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_pool_keeps_its_order() {
        let addrs = pool(&["127.0.0.1:2", "[::1]:1"])
            .addresses()
            .expect("valid");
        assert_eq!(addrs[0].port(), 2);
        assert!(addrs[1].is_ipv6());
    }

    #[test]
    fn every_refusal_says_which_member() {
        assert_eq!(
            pool(&["127.0.0.1:1", "127.0.0.1:1"]).addresses(),
            Err(PoolBodyError::Duplicate(
                "127.0.0.1:1".parse().expect("addr")
            ))
        );
        let e = pool(&["shadow:80"]).addresses().expect_err("a name");
        assert_eq!(e.to_string(), "\"shadow:80\" is not an \"ip:port\" address");
        let many: Vec<String> = (0..=MAX_POOL_MEMBERS)
            .map(|i| format!("10.0.{}.{}:80", i / 256, i % 256))
            .collect();
        let body = PoolBody { upstreams: many };
        assert_eq!(body.addresses(), Err(PoolBodyError::TooMany));
    }

    #[test]
    fn a_weight_outside_zero_to_one_is_refused() {
        assert!(WeightBody { weight: 0.5 }.shadow_weight().is_ok());
        assert!(WeightBody { weight: 1.5 }.shadow_weight().is_err());
        assert!(WeightBody { weight: f64::NAN }.shadow_weight().is_err());
    }
}
