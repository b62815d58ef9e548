//! External demand signals for Umbra's forecaster: event calendars, marketing campaigns,
//! deployments and social sentiment, parsed from the formats people already have and put on a
//! regular time grid.
//!
//! Every `parse_*` function takes the input's name (used in errors) and its text, reads it
//! whole, and either returns everything in it or an [`Error`] naming the input, line and field:
//! nothing is ingested half-way. `load_*` helpers read a file and call the parser. Nothing here
//! reads the clock; callers pass `now` where it matters.
#![forbid(unsafe_code)]

pub mod campaigns;
mod csv_table;
pub mod deployments;
mod error;
pub mod grid;
pub mod ics;
mod input;
mod json_lines;
pub mod sentiment;
mod time;

pub use campaigns::{Campaign, load_campaigns, parse_campaigns};
pub use deployments::{
    Deployment, DeploymentEvent, DeploymentPhase, DeploymentStatus, deployments_from_events,
    load_deploy_events, load_deploy_schedule, parse_deploy_events, parse_deploy_schedule,
    parse_github_webhook,
};
pub use error::{Error, Problem};
pub use grid::{
    EventWindow, Grid, GridError, Regressor, SentimentSeries, campaign_active, campaign_uplift,
    deployment_indicator, event_indicator, event_windows, sentiment_regressors,
};
pub use ics::{
    Calendar, Event, ExpandLimits, IcsOptions, Occurrences, load_ics, parse_ics, parse_ics_with,
};
pub use sentiment::{
    Aggregator, Polarity, Post, SentimentBucket, VolumePoint, aggregate_posts, load_posts,
    load_volume_series, parse_posts, parse_volume_series, polarity_scores,
};
