//! umbra-proxy: a Pingora edge proxy that splits each workload between a primary and a shadow
//! pool by weight, and rolls the shadow back by itself when it degrades.

mod access_log;
pub mod admin;
mod choice;
mod clock;
mod drain;
mod forwarded;
mod guard;
pub mod handover;
mod headers;
mod health;
mod metrics;
mod path;
mod reload;
mod retry;
mod server;
mod service;
mod state;
mod table;
mod threads;
pub mod tls;
mod upstream;
mod window;
mod workload;

pub use choice::{Choice, Draws, choose};
pub use guard::GuardService;
pub use health::check as health_check;
pub use metrics::Metrics;
pub use reload::{ReloadError, ReloadSummary, reload};
pub use server::{Daemon, RunOptions, run};
pub use service::{RequestCtx, UmbraProxy};
pub use state::Shared;
pub use table::{Route, RouteTable, StickyRule, bare_host};
pub use upstream::{Upstream, UpstreamRegistry};
pub use window::LatencyWindow;
pub use workload::{CooldownError, Pool, Survey, Workload};
