//! iCalendar (RFC 5545) event calendars: parsing and bounded expansion into occurrences.

mod calendar;
mod expand;
mod lexer;
mod recurrence;
mod values;

pub use calendar::{Calendar, IcsOptions, load_ics, parse_ics, parse_ics_with};
pub use expand::{Event, ExpandLimits, Occurrences};
