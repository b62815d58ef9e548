//! Expansion of a [`Calendar`] into concrete [`Event`] occurrences within `[from, to)`, bounded
//! so that an endless `RRULE` costs a fixed amount of work.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::ics::calendar::{Calendar, CalendarEvent, Exclusion, Length};

/// One concrete occurrence of a calendar event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `SUMMARY` of the event; occurrences of one series share it.
    pub name: String,
    /// Start of this occurrence.
    pub start: DateTime<Utc>,
    /// End of this occurrence (equal to `start` for an instant).
    pub end: DateTime<Utc>,
    /// `UID` of the VEVENT (`line-N` when the producer left it out).
    pub uid: String,
    /// Name of the calendar it came from.
    pub source: String,
    /// True for all-day (`VALUE=DATE`) events.
    pub all_day: bool,
}

/// Bounds on the work one expansion may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandLimits {
    /// Most occurrences returned for the whole calendar. Default 10,000.
    pub max_occurrences: usize,
    /// Most instances generated per recurring event, counted from its `DTSTART` (instances
    /// before `from` count too). Default 200,000: a daily event since 1500, or a 5-minute one
    /// for about two years.
    pub max_scan_per_event: usize,
}

impl Default for ExpandLimits {
    fn default() -> Self {
        Self {
            max_occurrences: 10_000,
            max_scan_per_event: 200_000,
        }
    }
}

/// The occurrences in a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Occurrences {
    /// Occurrences overlapping the range, sorted by start then UID.
    pub events: Vec<Event>,
    /// UIDs of events whose expansion stopped at a limit; their later occurrences are missing.
    pub truncated: Vec<String>,
}

impl Calendar {
    /// Occurrences that overlap `[from, to)`: those with `start < to` and `end > from` (an
    /// instant counts when `from <= start < to`). Cancelled events and cancelled or moved
    /// instances are left out; an overriding VEVENT (`RECURRENCE-ID`) appears in their place.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limits: &ExpandLimits,
    ) -> Occurrences {
        let mut out = Occurrences::default();
        if from >= to {
            return out;
        }
        let mut overridden: HashMap<&str, Vec<Exclusion>> = HashMap::new();
        for e in &self.events {
            if let Some(id) = e.recurrence_id {
                overridden.entry(e.uid.as_str()).or_default().push(id);
            }
        }
        for event in self.events.iter().filter(|e| !e.cancelled) {
            let moved = match event.recurrence_id {
                // An override is a single instance of its own.
                Some(_) => &[][..],
                None => overridden.get(event.uid.as_str()).map_or(&[][..], |v| v),
            };
            let budget = limits.max_occurrences.saturating_sub(out.events.len());
            let complete = expand_event(
                self,
                event,
                moved,
                from,
                to,
                budget,
                limits,
                &mut out.events,
            );
            if !complete {
                out.truncated.push(event.uid.clone());
            }
        }
        out.events
            .sort_by(|a, b| (a.start, &a.uid).cmp(&(b.start, &b.uid)));
        out
    }
}

/// Pushes `event`'s occurrences overlapping `[from, to)` into `out`; false when a limit cut the
/// expansion short.
#[allow(clippy::too_many_arguments)] // private helper; a struct would only rename the list
fn expand_event(
    calendar: &Calendar,
    event: &CalendarEvent,
    moved: &[Exclusion],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    budget: usize,
    limits: &ExpandLimits,
    out: &mut Vec<Event>,
) -> bool {
    let tz = event.start.timezone();
    let mut emitted = 0usize;
    let mut emit = |start: DateTime<Tz>, out: &mut Vec<Event>| -> bool {
        let Some(end) = end_of(event.length, start) else {
            return true;
        };
        let (start, end) = (start.with_timezone(&Utc), end.with_timezone(&Utc));
        let overlaps = if end > start {
            start < to && end > from
        } else {
            start >= from && start < to
        };
        if !overlaps {
            return true;
        }
        if emitted >= budget {
            return false;
        }
        emitted += 1;
        out.push(Event {
            name: event.summary.clone(),
            start,
            end,
            uid: event.uid.clone(),
            source: calendar.name.clone(),
            all_day: event.all_day,
        });
        true
    };
    let Some(set) = &event.recurrence else {
        if is_excluded(event.start, &event.exclusions, moved) {
            return true;
        }
        return emit(event.start, out);
    };
    // `limit()` makes the rrule iterator give up after 100,000 fruitless steps (a rule that
    // never matches, like Feb 30th), so each `next()` is bounded as well as the count.
    let mut last = None;
    for (scanned, instance) in set.clone().limit().into_iter().enumerate() {
        if scanned >= limits.max_scan_per_event {
            return false;
        }
        let start = instance.with_timezone(&tz);
        if start.with_timezone(&Utc) >= to {
            return true;
        }
        // DTSTART is added as an RDATE and may coincide with the rule's first instance.
        if last == Some(start) {
            continue;
        }
        last = Some(start);
        if is_excluded(start, &event.exclusions, moved) {
            continue;
        }
        if !emit(start, out) {
            return false;
        }
    }
    true
}

/// End of an occurrence starting at `start`.
fn end_of(length: Length, start: DateTime<Tz>) -> Option<DateTime<Tz>> {
    match length {
        Length::Exact(d) => start.checked_add_signed(d),
        Length::Nominal(d) => d.add_to(start),
    }
}

/// True when an EXDATE or an overriding VEVENT removes the instance at `start`.
fn is_excluded(start: DateTime<Tz>, exclusions: &[Exclusion], moved: &[Exclusion]) -> bool {
    let utc = start.with_timezone(&Utc);
    let day = start.date_naive();
    exclusions.iter().chain(moved).any(|x| match x {
        Exclusion::At(t) => *t == utc,
        Exclusion::Day(d) => *d == day,
    })
}
