//! Whether the controller's three copies of a migration agree: what its API says, what its
//! SQLite store holds, and the weight the proxy applies.

use umbra_e2e::store::StoreReader;

use crate::stack::{ChaosStack, proxy_workload, status};

/// What the three say, and whether they agree with `want` (a phase name).
pub struct Agreement {
    /// All agree, the store is intact, and the phase is `want`.
    pub ok: bool,
    /// In a few words.
    pub text: String,
}

/// Reads API, store and proxy; the phase must be `want`.
pub async fn check(c: &ChaosStack, want: &str) -> Agreement {
    let api = status(&c.stack).await;
    let api_state = api
        .as_ref()
        .and_then(|w| w["migration_state"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unreachable".into());
    let api_weight = api.as_ref().and_then(|w| w["shadow_weight"].as_f64());
    let proxy_weight = proxy_workload(&c.stack)
        .await
        .and_then(|w| w["shadow_weight"].as_f64());
    let data = c.stack.dir.path().join("data");
    let (stored, integrity) = {
        let store = StoreReader::open(&data);
        let stored = store
            .phase("api")
            .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
            .and_then(|v| v["phase"].as_str().map(str::to_string))
            .unwrap_or_else(|| "none".into());
        (stored, store.integrity_check())
    };
    let weights_agree = match (api_weight, proxy_weight) {
        (Some(a), Some(p)) => (a - p).abs() < 1e-6,
        _ => false,
    };
    let ok = api_state == want && stored == want && weights_agree && integrity == "ok";
    let text = if ok {
        format!("{want}; store, API and proxy agree")
    } else {
        format!(
            "API {api_state} (weight {}), store {stored}, proxy weight {}, integrity {integrity}; expected {want}",
            api_weight.map_or("-".into(), |w| w.to_string()),
            proxy_weight.map_or("-".into(), |w| w.to_string()),
        )
    };
    Agreement { ok, text }
}
