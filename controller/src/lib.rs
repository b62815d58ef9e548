//! umbra's control plane as a library: history, signals, forecasts, the orchestrator and its API; the `umbra` crate's binary runs it.

pub mod alerts;
pub mod api;
pub mod board;
pub mod clock;
pub mod forecasting;
#[cfg(feature = "kubernetes")]
pub mod ha;
pub mod history;
pub mod ingest;
pub mod metrics;
pub mod orchestrate;
pub mod proxies;
pub mod run;
pub mod store;
