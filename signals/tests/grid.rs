//! Forecast inputs from the example signals: event windows and regressors on grids.

mod support;

use chrono::TimeDelta;
use signals::{
    ExpandLimits, Grid, GridError, campaign_active, campaign_uplift, deployment_indicator,
    event_indicator, event_windows, load_campaigns, load_deploy_schedule, load_ics,
};
use support::{unix, utc};

#[test]
fn holiday_windows_with_lead_and_lag() {
    let cal = load_ics(support::example("events.ics"));
    let Ok(cal) = cal else { panic!("{cal:?}") };
    let occ = cal.occurrences(
        utc("2024-11-01T00:00:00Z"),
        utc("2024-12-31T00:00:00Z"),
        &ExpandLimits::default(),
    );
    let black_friday: Vec<_> = occ
        .events
        .into_iter()
        .filter(|e| e.name == "Black Friday")
        .collect();
    let windows = event_windows(&black_friday, TimeDelta::days(1), TimeDelta::hours(12));
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].name, "Black Friday");
    assert_eq!(windows[0].start, unix("2024-11-27T23:00:00Z"));
    assert_eq!(windows[0].end, unix("2024-12-03T11:00:00Z"));

    // Daily UTC grid from 26 November: the window covers 1 h of the 27th, all of 28 Nov to
    // 2 Dec, and 11 h of 3 Dec.
    let Ok(grid) = Grid::new(unix("2024-11-26T00:00:00Z"), 86_400, 9) else {
        panic!("grid")
    };
    let got = event_indicator(&windows, &grid);
    let want = [0.0, 1.0 / 24.0, 1.0, 1.0, 1.0, 1.0, 1.0, 11.0 / 24.0, 0.0];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?}");
    }
}

#[test]
fn campaign_regressors_for_a_workload() {
    let campaigns = load_campaigns(support::example("campaigns.csv"));
    let Ok(campaigns) = campaigns else {
        panic!("{campaigns:?}")
    };
    let Ok(grid) = Grid::new(unix("2024-11-24T00:00:00Z"), 86_400, 10) else {
        panic!("grid")
    };
    let uplift = campaign_uplift(&campaigns, "checkout", &grid);
    let active = campaign_active(&campaigns, "checkout", &grid);
    // 24 Nov: nothing. 25 Nov from 08:00: 15% × 16/24. 26-28 Nov: 15%. 29 Nov - 2 Dec: 40%.
    let want_uplift = [
        0.0,
        0.15 * 16.0 / 24.0,
        0.15,
        0.15,
        0.15,
        0.4,
        0.4,
        0.4,
        0.4,
        0.0,
    ];
    let want_active = [0.0, 16.0 / 24.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    for i in 0..10 {
        assert!((uplift[i] - want_uplift[i]).abs() < 1e-12, "{uplift:?}");
        assert!((active[i] - want_active[i]).abs() < 1e-12, "{active:?}");
    }
    // "recommendations" only has the all-workload and the 26-31 Dec campaigns.
    assert!(
        campaign_uplift(&campaigns, "recommendations", &grid)
            .iter()
            .all(|v| *v == 0.0)
    );
}

#[test]
fn overlapping_campaigns_add_their_uplift() {
    let campaigns = signals::parse_campaigns(
        "c.csv",
        "start,end,workloads,expected_uplift\n\
         2024-01-01,2024-01-01,,10%\n2024-01-01 12:00,2024-01-02,a,0.2\n",
    );
    let Ok(campaigns) = campaigns else {
        panic!("{campaigns:?}")
    };
    let Ok(grid) = Grid::new(unix("2024-01-01T00:00:00Z"), 43_200, 4) else {
        panic!("grid")
    };
    let got = campaign_uplift(&campaigns, "a", &grid);
    let want = [0.1, 0.1 + 0.2, 0.2, 0.2];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?}");
    }
    assert_eq!(campaign_active(&campaigns, "a", &grid), vec![1.0; 4]);
}

#[test]
fn planned_deployments_on_an_hourly_grid() {
    let plan = load_deploy_schedule(support::example("deployments.csv"), TimeDelta::minutes(30));
    let Ok(plan) = plan else { panic!("{plan:?}") };
    let Ok(grid) = Grid::new(unix("2024-11-26T13:00:00Z"), 3_600, 4) else {
        panic!("grid")
    };
    assert_eq!(
        deployment_indicator(&plan, "checkout", &grid),
        vec![0.0, 1.0, 0.0, 0.0]
    );
    let Ok(grid) = Grid::new(unix("2024-11-27T09:00:00Z"), 3_600, 2) else {
        panic!("grid")
    };
    assert_eq!(deployment_indicator(&plan, "search", &grid), vec![0.5, 0.0]);
    assert_eq!(
        deployment_indicator(&plan, "checkout", &grid),
        vec![0.0, 0.0]
    );
}

#[test]
fn grid_refuses_bad_shapes() {
    assert_eq!(Grid::new(0, 0, 10), Err(GridError::Step(0)));
    assert!(matches!(
        Grid::new(i64::MAX - 10, 60, 10),
        Err(GridError::TooLong { .. })
    ));
    assert!(matches!(
        Grid::new(0, 60, Grid::MAX_LEN + 1),
        Err(GridError::TooLong { .. })
    ));
}

/// The forecast crate's example calendars are read by this parser too.
#[test]
fn forecast_example_calendars_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events");
    let entries = std::fs::read_dir(&dir);
    let Ok(entries) = entries else {
        panic!("{}: {entries:?}", dir.display())
    };
    let mut seen = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "ics") {
            let cal = load_ics(&path);
            let Ok(cal) = cal else { panic!("{cal:?}") };
            assert!(!cal.is_empty(), "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 1, "no calendars in {}", dir.display());
}
