//! umbra's control plane as a library: the binary in `main.rs` is a thin shell over it.

pub mod cli;
pub mod provision;
pub mod simulate;
pub mod store;
pub mod alerts;
pub mod board;
pub mod clock;
pub mod history;
pub mod metrics;
pub mod proxies;
pub mod forecasting;
pub mod ingest;
pub mod orchestrate;
pub mod api;
pub mod backend;
pub mod run;
pub mod up;
