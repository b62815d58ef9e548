//! External demand signals for Umbra's forecaster: event calendars, marketing campaigns,
//! deployments and social sentiment, parsed from the formats people already have and put on a
//! regular time grid.
#![forbid(unsafe_code)]

mod error;
pub mod ics;
mod time;

pub use error::{Error, Problem};
pub use ics::{
    Calendar, Event, ExpandLimits, IcsOptions, Occurrences, load_ics, parse_ics, parse_ics_with,
};
