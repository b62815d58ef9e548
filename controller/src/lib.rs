//! umbra's control plane as a library: the binary in `main.rs` is a thin shell over it.

pub mod alerts;
pub mod api;
pub mod backend;
pub mod board;
pub mod cli;
pub mod clock;
pub mod demo;
pub mod example_load;
pub mod forecasting;
#[cfg(feature = "kubernetes")]
pub mod ha;
pub mod history;
pub mod ingest;
pub mod metrics;
pub mod orchestrate;
pub mod provision;
pub mod proxies;
pub mod run;
pub mod simulate;
pub mod store;
pub mod supervise;
pub mod up;
