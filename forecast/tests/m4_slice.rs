//! The default forecaster on three M4 hourly series (H1, H101, H201; see `tests/data/README.md`)
//! with M4's protocol: the 48 test points held out, MASE scaled by the in-sample seasonal-naive
//! error. A small stand-in for the full M4 hourly run in `bench/forecast` (`--only m4`).

use std::path::Path;

use forecast::{ForecastOptions, Forecaster, M4Series, Series, metrics, read_m4};

const SEASON: usize = 24;

fn slice(name: &str) -> Vec<M4Series> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("slice reads");
    read_m4(&text, name).expect("slice parses")
}

#[test]
fn defaults_beat_seasonal_naive_with_sane_intervals_on_the_m4_hourly_slice() {
    let train = slice("m4_hourly_train_slice.csv");
    let test = slice("m4_hourly_test_slice.csv");
    assert_eq!(train.len(), 3);
    let forecaster = Forecaster::new();
    let narrow = ForecastOptions {
        level: 0.2,
        ..ForecastOptions::default()
    };
    let (mut ours, mut naive) = (Vec::new(), Vec::new());
    let (mut inside, mut points) = (0.0, 0);
    for (tr, te) in train.iter().zip(&test) {
        assert_eq!(tr.id, te.id);
        let horizon = te.values.len();
        assert_eq!(horizon, 48);
        let series = Series::new(0, 3600, tr.values.clone());
        let fc = forecaster
            .forecast(&series, horizon, &ForecastOptions::default())
            .expect("forecasts");
        let q60 = forecaster
            .forecast(&series, horizon, &narrow)
            .expect("forecasts at level 0.2")
            .upper;
        for i in 0..horizon {
            let (lo, p, hi) = (fc.lower[i], fc.point[i], fc.upper[i]);
            assert!(p.is_finite(), "{} step {i}: point {p}", tr.id);
            assert!(
                lo <= p && p <= q60[i] && q60[i] <= hi,
                "{} step {i}: q0.1 {lo} point {p} q0.6 {} q0.9 {hi} out of order",
                tr.id,
                q60[i]
            );
        }
        let snaive: Vec<f64> = (0..horizon)
            .map(|i| tr.values[tr.values.len() - SEASON + i % SEASON])
            .collect();
        let m = metrics::mase(&tr.values, &te.values, &fc.point, SEASON);
        let n = metrics::mase(&tr.values, &te.values, &snaive, SEASON);
        // Never catastrophic: no series much worse than the simplest seasonal forecast.
        assert!(
            m <= 1.5 * n,
            "{}: MASE {m:.3} ({}) vs seasonal naive {n:.3}",
            tr.id,
            fc.model
        );
        ours.push(m);
        naive.push(n);
        inside += metrics::coverage(&te.values, &fc.lower, &fc.upper) * horizon as f64;
        points += horizon;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&ours) < mean(&naive),
        "mean MASE {:.3} {ours:?} not below seasonal naive's {:.3} {naive:?}",
        mean(&ours),
        mean(&naive)
    );
    // A floor, not the 80% target: collapsed or misplaced bands cover far less.
    let coverage = inside / points as f64;
    assert!(
        coverage >= 0.5,
        "80% interval covers {coverage:.2} of held-out points"
    );
}
