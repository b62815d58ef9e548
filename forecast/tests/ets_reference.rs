//! The vendored, patched augurs-ets (third_party/augurs-ets/PATCHES.md) fits exactly what the
//! published crate fits: forecasts on two fixed series, pinned to the values augurs-ets 0.10.3
//! from crates.io gave (printed with `ETS_REFERENCE_PRINT=1` and the `[patch]` line removed).
//! The published crate cannot fit a form without trend on its own (patch 3), so those are
//! pinned to what its search fitted when it chose that form.

use augurs::ets::AutoETS;
use augurs::{Fit, Predict};

/// A level with a slow rise, a cycle ETS does not model, and deterministic noise.
fn rising() -> Vec<f64> {
    (0..400)
        .map(|i| {
            let t = i as f64;
            150.0 + 0.15 * t + 12.0 * (t / 17.0).sin() + ((i * 37) % 13) as f64
        })
        .collect()
}

/// A flat level with deterministic noise: the search picks a form without trend.
fn flat() -> Vec<f64> {
    (0..400)
        .map(|i| 80.0 + ((i * 37) % 13) as f64 + ((i * 11) % 7) as f64 * 0.5)
        .collect()
}

/// The search (`ZZN`), or one form, fitted on `y`: the form it fitted and six steps ahead.
fn forecast(spec: &str, damped: bool, y: &[f64]) -> (String, Vec<f64>) {
    let model = if spec == "ZZN" {
        AutoETS::non_seasonal()
    } else {
        AutoETS::new(1, spec)
            .expect("spec")
            .damped(damped)
            .expect("damping")
    };
    let fitted = model
        .fit(y)
        .unwrap_or_else(|e| panic!("{spec} damped={damped}: {e}"));
    let m = fitted.model();
    let form = format!(
        "{}{}",
        m.model_type(),
        if m.damped() { " damped" } else { "" }
    );
    (form, fitted.predict(6, None).expect("predicts").point)
}

type Row = (&'static str, bool, bool, &'static str, [f64; 6]);

/// AAN on the rising series, as the search and the form alone both fit it.
const RISING_AAN: [f64; 6] = [
    202.9148865216783,
    203.24247322419131,
    203.57005992670432,
    203.89764662921732,
    204.22523333173032,
    204.55282003424333,
];

/// (spec, damped, on the flat series, form fitted, forecast)
const EXPECTED: [Row; 6] = [
    ("ZZN", false, false, "AAN", RISING_AAN),
    ("ZZN", false, true, "ANN", [87.50987399252891; 6]),
    ("AAN", false, false, "AAN", RISING_AAN),
    (
        "AAN",
        true,
        false,
        "AAN damped",
        [
            202.87792710975145,
            203.19114697982093,
            203.49810185515173,
            203.79891704758654,
            204.09371536249213,
            204.38261714889381,
        ],
    ),
    (
        "MAN",
        true,
        false,
        "MAN damped",
        [
            202.88216120391152,
            203.1964331699264,
            203.5043986007619,
            203.806184050455,
            204.1019135334666,
            204.39170857564397,
        ],
    ),
    // The published crate's search chose this form on this series (the row above but three).
    ("ANN", false, true, "ANN", [87.50987399252891; 6]),
];

#[test]
fn every_form_forecasts_what_the_published_crate_did() {
    let print = std::env::var_os("ETS_REFERENCE_PRINT").is_some();
    for (spec, damped, on_flat, form, expected) in EXPECTED {
        let y = if on_flat { flat() } else { rising() };
        if print {
            let got = std::panic::catch_unwind(|| forecast(spec, damped, &y));
            println!("    (\"{spec}\", {damped}, {on_flat}, {got:?}),");
            continue;
        }
        let (got_form, got) = forecast(spec, damped, &y);
        assert_eq!(got_form, form, "{spec} damped={damped}");
        for (g, e) in got.iter().zip(expected) {
            assert!(
                (g - e).abs() <= 1e-9 * e.abs(),
                "{spec} damped={damped}: {got:?} vs {expected:?}"
            );
        }
    }
}
