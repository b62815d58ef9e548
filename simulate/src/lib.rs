//! `umbra simulate`: replays a demand trace through the live controller's reconciler and forecaster beside the Kubernetes HPA, and counts what each would have missed.
//!
//! It depends on `policies` and `forecast` only: the controller's I/O (store, proxies,
//! provisioners) is not here, and the decisions are `policies::reconcile`, the function the
//! live controller calls.

mod ahead;
pub mod episodes;
mod error;
pub mod forecasting;
pub mod hpa;
pub mod oracle;
pub mod pool;
pub mod predictive;
pub mod reactive;
pub mod replay;
pub mod report;
pub mod schedule;
pub mod settings;
pub mod summary;
pub mod trace;

pub use episodes::Episode;
pub use error::SimulateError;
pub use forecasting::{DemandForecaster, ForecastView, WalkForward};
pub use hpa::{HpaConfig, PodCounts};
pub use oracle::perfect_foresight;
pub use pool::Delays;
pub use predictive::Decision;
pub use replay::{Outcome, STEP_S, TimelinePoint, WORST_EPISODES, replay};
pub use schedule::RefitSchedule;
pub use settings::{Settings, primary_from_first_day};
pub use summary::{Summary, four_numbers};
pub use trace::DemandTrace;
