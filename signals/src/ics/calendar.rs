//! VCALENDAR / VEVENT assembly: component nesting, the properties an event needs, and their
//! validation into [`CalendarEvent`]s ready for expansion.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use rrule::RRuleSet;

use crate::error::{Error, Problem};
use crate::ics::lexer::{ContentLine, content_lines, unescape_text};
use crate::ics::recurrence::parse_rrule;
use crate::ics::values::{IcsDuration, IcsTime, parse_duration, parse_time_value, resolve_tzid};

/// How to read an iCalendar file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IcsOptions {
    /// Zone for floating times and all-day dates. `None` (the default) uses the calendar's
    /// `X-WR-TIMEZONE` when present, else UTC.
    pub floating_tz: Option<Tz>,
}

/// A parsed calendar: its events, validated, not yet expanded into occurrences.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub(crate) name: String,
    pub(crate) events: Vec<CalendarEvent>,
}

impl Calendar {
    /// The name the calendar was parsed under (recorded as each event's `source`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of VEVENT components, including cancelled ones and per-instance overrides.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when the calendar has no VEVENT.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// An excluded instance: by exact start (`EXDATE` date-time) or by local day (`EXDATE;VALUE=DATE`,
/// which also removes instances of timed events on that day, as producers intend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exclusion {
    /// The instance starting at this instant.
    At(DateTime<Utc>),
    /// Any instance starting on this local date.
    Day(NaiveDate),
}

/// How long each occurrence lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Length {
    /// `DTEND` on a timed event: RFC 5545 applies the same exact duration to every instance.
    Exact(TimeDelta),
    /// `DURATION`, or all-day `DTEND`: days on the wall clock, then exact seconds.
    Nominal(IcsDuration),
}

/// One VEVENT after validation.
#[derive(Debug, Clone)]
pub(crate) struct CalendarEvent {
    /// `UID`, or `line-N` when the producer left it out.
    pub uid: String,
    /// `SUMMARY`, unescaped; empty when absent.
    pub summary: String,
    /// `DTSTART` resolved in its zone.
    pub start: DateTime<Tz>,
    /// `VALUE=DATE` event.
    pub all_day: bool,
    /// Occurrence length.
    pub length: Length,
    /// Recurrence (RRULE/RDATE), `None` for a single event.
    pub recurrence: Option<RRuleSet>,
    /// EXDATEs.
    pub exclusions: Vec<Exclusion>,
    /// Set when this VEVENT replaces one instance of the series with the same UID.
    pub recurrence_id: Option<Exclusion>,
    /// `STATUS:CANCELLED`.
    pub cancelled: bool,
}

/// Parses an iCalendar (RFC 5545) text with default [`IcsOptions`].
///
/// Accepted: line folding, any number of VCALENDARs, VEVENTs with SUMMARY, UID, DTSTART,
/// DTEND or DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID and STATUS; all-day, UTC, floating
/// and `TZID=` times. VTIMEZONE blocks are skipped: a `TZID` must be an IANA name (also accepted
/// at the end of a vendor prefix like `/mozilla.org/…/Europe/Berlin`) or a common Windows zone
/// name; the zone rules come from the IANA database, so DST is handled without them. Other
/// components (VTODO, VALARM…) and unknown properties are ignored.
pub fn parse_ics(name: &str, text: &str) -> Result<Calendar, Error> {
    parse_ics_with(name, text, &IcsOptions::default())
}

/// [`parse_ics`] with explicit options.
pub fn parse_ics_with(name: &str, text: &str, options: &IcsOptions) -> Result<Calendar, Error> {
    let text = crate::input::strip_bom(text);
    let lines = content_lines(text).map_err(|e| {
        Error::invalid(
            name,
            Some(e.line),
            "content line",
            Problem::Syntax { message: e.message },
        )
    })?;
    let components = split_components(name, &lines)?;
    let floating = match (options.floating_tz, components.calendar_tz) {
        (Some(tz), _) => tz,
        (None, Some(line)) => resolve_tzid(&line.value).ok_or_else(|| {
            Error::invalid(
                name,
                Some(line.line),
                "X-WR-TIMEZONE",
                Problem::UnknownTimeZone {
                    tzid: line.value.clone(),
                },
            )
        })?,
        (None, None) => Tz::UTC,
    };
    let events = components
        .events
        .iter()
        .map(|(begin, props)| build_event(name, *begin, props, floating))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Calendar {
        name: name.to_string(),
        events,
    })
}

/// Reads and parses an `.ics` file; the path is the calendar's name.
pub fn load_ics(path: impl AsRef<std::path::Path>) -> Result<Calendar, Error> {
    let path = path.as_ref();
    parse_ics(&path.display().to_string(), &crate::input::read_text(path)?)
}

/// The VEVENT property lists of a file, and its calendar-level default zone.
struct Components<'a> {
    events: Vec<(usize, Vec<&'a ContentLine>)>,
    calendar_tz: Option<&'a ContentLine>,
}

/// Checks BEGIN/END nesting and collects each top-level VEVENT's own properties.
fn split_components<'a>(name: &str, lines: &'a [ContentLine]) -> Result<Components<'a>, Error> {
    let syntax = |line: usize, field: &str, message: String| {
        Error::invalid(name, Some(line), field, Problem::Syntax { message })
    };
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut out = Components {
        events: Vec::new(),
        calendar_tz: None,
    };
    let mut current: Option<(usize, Vec<&ContentLine>)> = None;
    for cl in lines {
        match cl.name.as_str() {
            "BEGIN" => {
                let component = cl.value.trim().to_ascii_uppercase();
                if stack.is_empty() && component != "VCALENDAR" {
                    return Err(syntax(
                        cl.line,
                        "BEGIN",
                        format!("expected BEGIN:VCALENDAR, found BEGIN:{component}"),
                    ));
                }
                if component == "VEVENT" && stack.len() == 1 {
                    current = Some((cl.line, Vec::new()));
                }
                stack.push((component, cl.line));
            }
            "END" => {
                let component = cl.value.trim().to_ascii_uppercase();
                let Some((open, _)) = stack.pop() else {
                    return Err(syntax(
                        cl.line,
                        "END",
                        format!("END:{component} without BEGIN"),
                    ));
                };
                if open != component {
                    return Err(syntax(
                        cl.line,
                        "END",
                        format!("END:{component} closes BEGIN:{open}"),
                    ));
                }
                if component == "VEVENT" && stack.len() == 1 {
                    if let Some(event) = current.take() {
                        out.events.push(event);
                    }
                }
            }
            _ if stack.is_empty() => {
                return Err(syntax(
                    cl.line,
                    &cl.name,
                    "property outside BEGIN:VCALENDAR ... END:VCALENDAR; is this an iCalendar \
                     file?"
                        .into(),
                ));
            }
            "X-WR-TIMEZONE" if stack.len() == 1 => out.calendar_tz = Some(cl),
            _ if stack.len() == 2 => {
                if let Some((_, props)) = current.as_mut() {
                    props.push(cl);
                }
            }
            _ => {}
        }
    }
    if let Some((open, line)) = stack.pop() {
        return Err(syntax(
            line,
            "BEGIN",
            format!("BEGIN:{open} is never closed by END:{open}"),
        ));
    }
    if lines.is_empty() {
        return Err(syntax(
            1,
            "BEGIN",
            "empty input; expected BEGIN:VCALENDAR".into(),
        ));
    }
    Ok(out)
}

/// Properties of which RFC 5545 allows at most one per VEVENT.
const SINGLE: [&str; 7] = [
    "UID",
    "SUMMARY",
    "DTSTART",
    "DTEND",
    "DURATION",
    "RECURRENCE-ID",
    "STATUS",
];

/// Validates one VEVENT.
fn build_event(
    name: &str,
    begin: usize,
    props: &[&ContentLine],
    floating: Tz,
) -> Result<CalendarEvent, Error> {
    let err =
        |cl: &ContentLine, problem| Error::invalid(name, Some(cl.line), cl.name.clone(), problem);
    for (i, cl) in props.iter().enumerate() {
        if SINGLE.contains(&cl.name.as_str()) && props[..i].iter().any(|p| p.name == cl.name) {
            return Err(err(
                cl,
                Problem::BadValue {
                    value: cl.value.clone(),
                    expected: "at most one per VEVENT".into(),
                },
            ));
        }
    }
    let find = |key: &str| props.iter().copied().find(|p| p.name == key);

    let dtstart_line = find("DTSTART")
        .ok_or_else(|| Error::invalid(name, Some(begin), "DTSTART", Problem::Missing))?;
    let dtstart = time_of(dtstart_line).map_err(|p| err(dtstart_line, p))?;
    let start = resolved(dtstart_line, dtstart, floating).map_err(|p| err(dtstart_line, p))?;
    let all_day = dtstart.is_date();

    let length = match (find("DTEND"), find("DURATION")) {
        (Some(a), Some(_)) => {
            return Err(err(
                a,
                Problem::BadValue {
                    value: a.value.clone(),
                    expected: "DTEND or DURATION, not both".into(),
                },
            ));
        }
        (Some(end_line), None) => {
            let end = time_of(end_line).map_err(|p| err(end_line, p))?;
            if end.is_date() != all_day {
                return Err(err(
                    end_line,
                    Problem::BadValue {
                        value: end_line.value.clone(),
                        expected: "the same value type as DTSTART (both dates or both \
                                   date-times)"
                            .into(),
                    },
                ));
            }
            let end_at = resolved(end_line, end, floating).map_err(|p| err(end_line, p))?;
            if end_at < start {
                return Err(err(
                    end_line,
                    Problem::EndNotAfterStart {
                        start: start.to_rfc3339(),
                        end: end_at.to_rfc3339(),
                    },
                ));
            }
            if all_day {
                let days = (end.date() - dtstart.date()).num_days();
                Length::Nominal(IcsDuration { days, seconds: 0 })
            } else {
                Length::Exact(end_at - start)
            }
        }
        (None, Some(d)) => {
            let duration = parse_duration(&d.value).map_err(|p| err(d, p))?;
            if duration.days < 0 || duration.seconds < 0 {
                return Err(err(
                    d,
                    Problem::BadValue {
                        value: d.value.clone(),
                        expected: "a duration that is not negative".into(),
                    },
                ));
            }
            Length::Nominal(duration)
        }
        // RFC 5545 §3.6.1: an all-day event without an end lasts the day, a timed one is
        // an instant.
        (None, None) if all_day => Length::Nominal(IcsDuration {
            days: 1,
            seconds: 0,
        }),
        (None, None) => Length::Exact(TimeDelta::zero()),
    };

    let mut rules = Vec::new();
    let mut rdates = Vec::new();
    let mut exclusions = Vec::new();
    for cl in props {
        match cl.name.as_str() {
            "RRULE" => {
                if let Some(rule) = parse_rrule(&cl.value, start).map_err(|p| err(cl, p))? {
                    rules.push(rule);
                }
            }
            "RDATE" => {
                if cl
                    .param("VALUE")
                    .is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"))
                {
                    return Err(err(
                        cl,
                        Problem::BadValue {
                            value: "VALUE=PERIOD".into(),
                            expected: "RDATE dates or date-times (periods are not supported)"
                                .into(),
                        },
                    ));
                }
                for t in list_of(cl).map_err(|p| err(cl, p))? {
                    rdates.push(resolved(cl, t, floating).map_err(|p| err(cl, p))?);
                }
            }
            "EXDATE" => {
                for t in list_of(cl).map_err(|p| err(cl, p))? {
                    exclusions.push(exclusion(cl, t, floating).map_err(|p| err(cl, p))?);
                }
            }
            _ => {}
        }
    }
    let recurrence = (!rules.is_empty() || !rdates.is_empty()).then(|| {
        let rstart = start.with_timezone(&rrule::Tz::from(start.timezone()));
        // RFC 5545: DTSTART always counts as the first instance, even when the rule would not
        // produce it; the rrule crate (like dateutil) does not add it by itself.
        let mut set = RRuleSet::new(rstart).set_rrules(rules).rdate(rstart);
        for r in rdates {
            set = set.rdate(r.with_timezone(&rrule::Tz::from(r.timezone())));
        }
        set
    });

    let recurrence_id = match find("RECURRENCE-ID") {
        Some(cl) => {
            let t = time_of(cl).map_err(|p| err(cl, p))?;
            Some(exclusion(cl, t, floating).map_err(|p| err(cl, p))?)
        }
        None => None,
    };
    let cancelled =
        find("STATUS").is_some_and(|s| s.value.trim().eq_ignore_ascii_case("CANCELLED"));
    Ok(CalendarEvent {
        uid: find("UID")
            .map(|u| unescape_text(u.value.trim()))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| format!("line-{begin}")),
        summary: find("SUMMARY")
            .map(|s| unescape_text(s.value.trim()))
            .unwrap_or_default(),
        start,
        all_day,
        length,
        recurrence,
        exclusions,
        recurrence_id,
        cancelled,
    })
}

/// The single DATE / DATE-TIME value of a property, honouring `VALUE=DATE` and `TZID=`.
fn time_of(cl: &ContentLine) -> Result<IcsTime, Problem> {
    let mut all = list_of(cl)?;
    match (all.pop(), all.is_empty()) {
        (Some(t), true) => Ok(t),
        (None, _) => Err(Problem::Missing),
        (Some(_), false) => Err(Problem::BadValue {
            value: cl.value.clone(),
            expected: "a single date or date-time".into(),
        }),
    }
}

/// The comma-separated DATE / DATE-TIME values of a property.
fn list_of(cl: &ContentLine) -> Result<Vec<IcsTime>, Problem> {
    let as_date = cl
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    let zone = match cl.param("TZID") {
        Some(id) => Some(resolve_tzid(id).ok_or_else(|| Problem::UnknownTimeZone {
            tzid: id.to_string(),
        })?),
        None => None,
    };
    if cl.value.trim().is_empty() {
        return Err(Problem::Missing);
    }
    cl.value
        .split(',')
        .map(|v| parse_time_value(v, as_date, zone))
        .collect()
}

/// A value as an instant, failing only outside chrono's range.
fn resolved(cl: &ContentLine, t: IcsTime, floating: Tz) -> Result<DateTime<Tz>, Problem> {
    t.resolve(floating).ok_or_else(|| Problem::BadTime {
        value: cl.value.clone(),
        expected: crate::ics::values::ICS_TIME_FORMS,
    })
}

/// An EXDATE / RECURRENCE-ID value as an exclusion.
fn exclusion(cl: &ContentLine, t: IcsTime, floating: Tz) -> Result<Exclusion, Problem> {
    Ok(match t {
        IcsTime::Date(d) => Exclusion::Day(d),
        other => Exclusion::At(resolved(cl, other, floating)?.with_timezone(&Utc)),
    })
}
