//! What `umbra demo` replays: the trace slice (history + live window), the compressed clock
//! and the request rate, chosen so that the window's peak really exceeds primary capacity.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use forecast::Series;

use simulate::DemandTrace;

/// The window's peak is scaled to this multiple of primary capacity: far enough above it that
/// primary alone would queue for trace-hours (latency climbing, then 503s), close enough that
/// a shadow pool of a few instances carries it.
pub const PEAK_OVER_CAPACITY: f64 = 1.3;

/// A plan that cannot be replayed, naming the option to change.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The speed does not map one trace step onto whole wall-clock seconds.
    #[error(
        "--speed {speed}: one trace step ({step_s} s) would last {wall:.3} s, but the controller's \
         history grid needs whole seconds; try {suggest}"
    )]
    Speed {
        /// Requested speed.
        speed: u32,
        /// Trace step, seconds.
        step_s: i64,
        /// Wall seconds per step it would give.
        wall: f64,
        /// Speeds that work.
        suggest: String,
    },
    /// The window does not fit in the trace.
    #[error("{option}: {message}")]
    Window {
        /// The option at fault.
        option: &'static str,
        /// Why.
        message: String,
    },
    /// The trace itself cannot be replayed.
    #[error("trace: {0}")]
    Trace(String),
}

/// Where in the trace the demo starts and how fast it runs.
#[derive(Clone, Copy, Debug)]
pub struct PlanOptions {
    /// Trace time imported as history before the live window.
    pub history: Duration,
    /// Offset of the live window's start from the trace's first sample.
    pub from: Duration,
    /// Trace time replayed live.
    pub window: Duration,
    /// Trace seconds per wall-clock second.
    pub speed: u32,
    /// Trace value -> requests/s; `None` = chosen from the window's peak.
    pub scale: Option<f64>,
    /// Requests/s one instance serves.
    pub instance_capacity: f64,
    /// Primary instances.
    pub primary_instances: u32,
}

/// A replayable plan.
#[derive(Clone, Debug)]
pub struct DemoPlan {
    /// History + window, raw trace values, on the trace's grid.
    pub slice: Series,
    /// Points of `slice` that are history; the last of them is the live window's first point.
    pub history_points: usize,
    /// Trace seconds per wall second.
    pub speed: u32,
    /// Wall-clock length of one trace step: the controller's history step.
    pub wall_step: Duration,
    /// Trace value -> requests/s.
    pub scale: f64,
    /// Whether `scale` was chosen by the demo.
    pub scale_chosen: bool,
    /// Requests/s one instance serves.
    pub instance_capacity: f64,
    /// Primary instances.
    pub primary_instances: u32,
    /// Trace time (unix s) and requests/s of the window's peak.
    pub peak: (i64, f64),
    /// The demand the load generator follows (scaled, interpolated).
    pub demand: DemandTrace,
}

impl DemoPlan {
    /// Cuts `trace` (a regular series of raw values) as `options` say.
    pub fn new(trace: &Series, options: &PlanOptions) -> Result<DemoPlan, PlanError> {
        let step = trace.step;
        if step <= 0 || trace.len() < 3 {
            return Err(PlanError::Trace(format!(
                "{} points every {step} s: nothing to replay",
                trace.len()
            )));
        }
        let speed = options.speed.max(1);
        let wall_ms = step as f64 * 1000.0 / f64::from(speed);
        if wall_ms < 1000.0 || wall_ms % 1000.0 != 0.0 {
            let suggest: Vec<String> = (1..=4)
                .map(|s| (step / s, s))
                .filter(|(sp, s)| *sp >= 1 && sp * s == step)
                .map(|(sp, s)| format!("{sp} ({s} s per step)"))
                .collect();
            return Err(PlanError::Speed {
                speed,
                step_s: step,
                wall: wall_ms / 1000.0,
                suggest: suggest.join(", "),
            });
        }
        let points = |d: Duration| (d.as_secs() as i64 / step) as usize;
        let first = points(options.from);
        let history = points(options.history).min(first);
        let window = points(options.window);
        if history < 24 {
            return Err(PlanError::Window {
                option: "--history",
                message: format!(
                    "{history} trace steps before --from; the forecaster needs at least 24"
                ),
            });
        }
        if window < 2 {
            return Err(PlanError::Window {
                option: "--window",
                message: "shorter than two trace steps".into(),
            });
        }
        let last = first + window;
        if last >= trace.len() {
            return Err(PlanError::Window {
                option: "--from/--window",
                message: format!(
                    "the live window ends {} steps past the trace's end",
                    last + 1 - trace.len()
                ),
            });
        }
        let slice = trace.window(first - history, last + 1);
        let (peak_i, raw_peak) = slice.values[history..]
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                if v > best.1 { (i, v) } else { best }
            });
        if raw_peak <= 0.0 {
            return Err(PlanError::Trace("the live window has no demand".into()));
        }
        let primary_capacity = f64::from(options.primary_instances) * options.instance_capacity;
        let scale = options
            .scale
            .unwrap_or(PEAK_OVER_CAPACITY * primary_capacity / raw_peak);
        let demand =
            DemandTrace::new(&slice, scale).map_err(|e| PlanError::Trace(e.to_string()))?;
        Ok(DemoPlan {
            peak: (slice.time_at(history + peak_i), raw_peak * scale),
            history_points: history + 1,
            speed,
            wall_step: Duration::from_millis(wall_ms as u64),
            scale,
            scale_chosen: options.scale.is_none(),
            instance_capacity: options.instance_capacity,
            primary_instances: options.primary_instances,
            demand,
            slice,
        })
    }

    /// Requests/s the primary pool serves.
    pub fn primary_capacity(&self) -> f64 {
        f64::from(self.primary_instances) * self.instance_capacity
    }

    /// Trace time (unix s) where the live window starts (the last history point).
    pub fn start(&self) -> i64 {
        self.slice.time_at(self.history_points - 1)
    }

    /// Trace time (unix s) where the live window ends.
    pub fn end(&self) -> i64 {
        self.slice.time_at(self.slice.len() - 1)
    }

    /// Wall-clock length of the live window.
    pub fn wall_duration(&self) -> Duration {
        Duration::from_secs_f64((self.end() - self.start()) as f64 / f64::from(self.speed))
    }

    /// Trace time (unix s, fractional) `wall` after the live window started.
    pub fn trace_at(&self, wall: Duration) -> f64 {
        self.start() as f64 + wall.as_secs_f64() * f64::from(self.speed)
    }

    /// Requests/s the load generator sends `wall` after the start.
    pub fn rate_at(&self, wall: Duration) -> f64 {
        self.demand.rate_at(self.trace_at(wall).floor() as i64)
    }

    /// The history part (raw values), its last point at the live window's start.
    pub fn history(&self) -> Series {
        self.slice.head(self.history_points)
    }
}

/// Writes `series` as a `timestamp,value` CSV (UTC times, gaps left out) that `umbra import`
/// and `umbra simulate` read back onto the same grid.
pub fn write_csv(series: &Series, path: &Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "timestamp,value")?;
    for (i, v) in series.values.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        let t = series.time_at(i);
        match chrono::DateTime::from_timestamp(t, 0) {
            Some(d) => writeln!(out, "{},{v}", d.format("%Y-%m-%d %H:%M:%S"))?,
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("timestamp {t} out of range"),
                ));
            }
        }
    }
    out.flush()
}

/// "Tue 2014-07-08 19:30": a trace time with its date, for ranges.
pub fn date_label(unix_s: i64) -> String {
    chrono::DateTime::from_timestamp(unix_s, 0)
        .map(|d| d.format("%a %Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| unix_s.to_string())
}

/// "Tue 19:30": a trace time as the narrative shows it.
pub fn trace_label(unix_s: f64) -> String {
    chrono::DateTime::from_timestamp(unix_s.floor() as i64, 0)
        .map(|d| d.format("%a %H:%M").to_string())
        .unwrap_or_else(|| format!("{unix_s:.0}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten days of a half-hourly daily cycle peaking at 19:00 with value 100.
    fn trace() -> Series {
        let values = (0..480)
            .map(|i| {
                let hour = (i % 48) as f64 / 2.0;
                10.0 + 90.0 * (-(hour - 19.0).powi(2) / 8.0).exp()
            })
            .collect();
        Series::new(0, 1800, values)
    }

    fn options() -> PlanOptions {
        PlanOptions {
            history: Duration::from_secs(7 * 86_400),
            from: Duration::from_secs(7 * 86_400 + 4 * 3600),
            window: Duration::from_secs(86_400),
            speed: 900,
            scale: None,
            instance_capacity: 50.0,
            primary_instances: 2,
        }
    }

    #[test]
    fn the_window_peak_is_scaled_above_primary_capacity() {
        let plan = DemoPlan::new(&trace(), &options()).expect("plan");
        assert_eq!(plan.wall_step, Duration::from_secs(2));
        assert!((plan.peak.1 - 130.0).abs() < 1e-9, "{:?}", plan.peak);
        assert_eq!(plan.peak.0 % 86_400, 19 * 3600);
        assert_eq!(plan.history_points, 7 * 48 + 1);
        assert_eq!(plan.start(), 7 * 86_400 + 4 * 3600);
        assert_eq!(plan.end() - plan.start(), 86_400);
        assert_eq!(plan.wall_duration(), Duration::from_secs(96));
        // One wall second is 900 trace seconds; the rate follows the scaled trace.
        assert_eq!(
            plan.trace_at(Duration::from_secs(1)),
            plan.start() as f64 + 900.0
        );
        let expected = plan.demand.rate_at(plan.start());
        assert!((plan.rate_at(Duration::ZERO) - expected).abs() < 1e-9);
    }

    #[test]
    fn an_explicit_scale_is_kept() {
        let plan = DemoPlan::new(
            &trace(),
            &PlanOptions {
                scale: Some(2.0),
                ..options()
            },
        )
        .expect("plan");
        assert!(!plan.scale_chosen);
        assert!((plan.peak.1 - 200.0).abs() < 1e-9);
    }

    #[test]
    fn speeds_that_split_a_step_into_fractions_of_a_second_are_refused() {
        let err = DemoPlan::new(
            &trace(),
            &PlanOptions {
                speed: 720,
                ..options()
            },
        )
        .expect_err("2.5 s per step");
        let text = err.to_string();
        assert!(text.contains("--speed 720"), "{text}");
        assert!(text.contains("900 (2 s per step)"), "{text}");
    }

    #[test]
    fn windows_past_the_trace_or_without_history_are_refused() {
        let past = PlanOptions {
            from: Duration::from_secs(9 * 86_400 + 12 * 3600),
            ..options()
        };
        assert!(
            DemoPlan::new(&trace(), &past)
                .expect_err("past the end")
                .to_string()
                .contains("--from/--window")
        );
        let early = PlanOptions {
            from: Duration::from_secs(3600),
            ..options()
        };
        assert!(
            DemoPlan::new(&trace(), &early)
                .expect_err("no history")
                .to_string()
                .contains("--history")
        );
    }
}
