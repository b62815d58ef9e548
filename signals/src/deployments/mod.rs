//! CI/CD deployments: a generic JSON event feed, GitHub webhooks and a CSV schedule, all ending
//! as [`Deployment`] windows.

mod events;
mod github;
mod model;
mod schedule;

pub use events::{load_deploy_events, parse_deploy_events};
pub use github::parse_github_webhook;
pub use model::{
    Deployment, DeploymentEvent, DeploymentPhase, DeploymentStatus, deployments_from_events,
};
pub use schedule::{load_deploy_schedule, parse_deploy_schedule};
