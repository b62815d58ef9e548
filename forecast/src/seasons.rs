//! Finds a series' seasonal periods with augurs' periodogram, snapped to calendar periods.

use augurs::seasons::{Detector, PeriodogramDetector};

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;
const YEAR: i64 = 365 * DAY;

/// Calendar periods (day, week, year) expressed in steps, where they are whole and >= 2 steps.
pub fn calendar_periods(step: i64) -> Vec<usize> {
    [DAY, WEEK, YEAR]
        .iter()
        .filter(|p| step > 0 && *p % step == 0 && *p / step >= 2)
        .map(|p| (p / step) as usize)
        .collect()
}

/// The season used by seasonal naive and the MASE scale: one day for sub-daily data,
/// one week for daily data, 1 otherwise.
pub fn natural_season(step: i64) -> usize {
    calendar_periods(step).first().copied().unwrap_or(1)
}

/// Seasonal periods (in steps) detected in `values`, shortest first.
///
/// The periodogram's resolution at long periods is coarse (a daily cycle of 288 steps may show
/// up as 273 or 315), so a detected peak within 15% of a calendar period is snapped to it; peaks
/// that are harmonics of a calendar period are dropped. Only periods the data holds at least two
/// full cycles of are returned.
pub fn detect_periods(values: &[f64], step: i64) -> Vec<usize> {
    let n = values.len();
    if n < 8 {
        return Vec::new();
    }
    let calendar = calendar_periods(step);
    // Look for periods up to a third of the data (the periodogram needs ~3 cycles per segment).
    let max_period = (n / 3).clamp(4, 4096) as u32;
    let detector = PeriodogramDetector::builder()
        .min_period(2)
        .max_period(max_period)
        .threshold(0.25)
        .build();
    let centred = demean(values);
    let mut found: Vec<usize> = Vec::new();
    for raw in detector.detect(&centred) {
        let raw = raw as usize;
        let snapped = calendar
            .iter()
            .copied()
            .find(|c| (raw as f64 - *c as f64).abs() <= 0.15 * *c as f64);
        let period = match snapped {
            Some(c) => c,
            None if calendar.iter().any(|c| is_harmonic(raw, *c)) => continue,
            None => raw,
        };
        if n >= 2 * period && !found.contains(&period) {
            found.push(period);
        }
    }
    // Daily data: the weekly cycle is 7 steps, too short for the periodogram's segment
    // windows to resolve reliably; test it directly by autocorrelation.
    for c in &calendar {
        if *c <= 16 && !found.contains(c) && n >= 4 * c && autocorrelation(&centred, *c) > 0.3 {
            found.push(*c);
        }
    }
    found.sort_unstable();
    found
}

fn is_harmonic(raw: usize, calendar: usize) -> bool {
    (2..=6).any(|k| {
        let h = calendar as f64 / k as f64;
        (raw as f64 - h).abs() <= 0.1 * h
    })
}

fn demean(values: &[f64]) -> Vec<f64> {
    let m = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().map(|v| v - m).collect()
}

fn autocorrelation(centred: &[f64], lag: usize) -> f64 {
    let var: f64 = centred.iter().map(|v| v * v).sum();
    if var == 0.0 || lag >= centred.len() {
        return 0.0;
    }
    let cov: f64 = centred[lag..].iter().zip(centred).map(|(a, b)| a * b).sum();
    cov / var
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_periods_depend_on_step() {
        assert_eq!(calendar_periods(1800), vec![48, 336, 17_520]);
        assert_eq!(calendar_periods(86_400), vec![7, 365]);
        assert_eq!(natural_season(300), 288);
        assert_eq!(natural_season(86_400), 7);
        assert_eq!(natural_season(7 * 86_400 + 1), 1);
    }

    #[test]
    fn detects_a_daily_cycle_in_synthetic_half_hourly_data() {
        let values: Vec<f64> = (0..48 * 14)
            .map(|i| 10.0 + (2.0 * std::f64::consts::PI * i as f64 / 48.0).sin())
            .collect();
        assert_eq!(detect_periods(&values, 1800), vec![48]);
    }

    #[test]
    fn noise_has_no_calendar_period() {
        // A deterministic pseudo-random walk-free sequence.
        let values: Vec<f64> = (0..2000u64)
            .map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 1000.0)
            .collect();
        let periods = detect_periods(&values, 1800);
        assert!(!periods.contains(&48), "{periods:?}");
    }
}
