//! Demand forecasting for Umbra: reads series, picks a model per series by backtest, forecasts
//! with calibrated intervals, and draws the result.

#![forbid(unsafe_code)]

mod backtest;
pub mod csv;
mod error;
mod events;
mod forecaster;
pub mod grid;
mod intervals;
pub mod m4;
pub mod metrics;
mod models;
mod options;
pub mod plot;
mod runner;
pub mod seasons;
mod select;
mod series;
mod study;
mod transform;

pub use backtest::{BacktestProgress, BacktestReport, ModelBacktest};
pub use error::ForecastError;
pub use forecaster::{Forecast, Forecaster};
pub use grid::{Gap, GridOptions, Regularised, read_series};
pub use intervals::{CHECK_LEVEL, IntervalCheck};
pub use m4::{M4Series, read_m4};
pub use models::{EtsForm, ModelKind};
pub use options::{ForecastOptions, ForecasterConfig};
pub use select::{ModelScore, Selection};
pub use series::{EventWindow, Regressor, Series};
pub use study::Study;
