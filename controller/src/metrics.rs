//! The controller's Prometheus metrics.

use std::sync::OnceLock;

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Reads the bytes the process holds on the heap now and the most it ever held; set once by
/// the binary that owns the global allocator (the library cannot see it).
static HEAP_READER: OnceLock<fn() -> (usize, usize)> = OnceLock::new();

/// Installs the reader behind `umbra_heap_allocated_bytes` and `umbra_heap_peak_bytes`. Later
/// calls are ignored.
pub fn set_heap_reader(read: fn() -> (usize, usize)) {
    let _ = HEAP_READER.set(read);
}

/// Bytes allocated and not yet freed, and the peak of that, when the binary counts them.
pub fn heap_allocated() -> Option<(usize, usize)> {
    HEAP_READER.get().map(|read| read())
}

/// Every metric `umbra` exports on its API's `/metrics`.
pub struct ControllerMetrics {
    registry: Registry,
    /// `umbra_forecast{workload,pool,resource,quantile}`: the next step's forecast.
    pub forecast: GaugeVec,
    /// `umbra_forecast_mase{workload,pool,resource}`: backtest MASE of the chosen model.
    pub forecast_mase: GaugeVec,
    /// `umbra_learned_rise{workload,pool,resource}`: how far demand rose within one start-up
    /// time at the policy's `rise_quantile`, the shadow's learned headroom.
    pub learned_rise: GaugeVec,
    /// `umbra_migrations_total{workload,outcome}`.
    pub migrations: IntCounterVec,
    /// `umbra_migration_state{workload}`: 0 idle, 1 provisioning, 2 ramping, 3 migrated,
    /// 4 returning, 5 rolled back.
    pub migration_state: IntGaugeVec,
    /// `umbra_shadow_instances{workload,size}`.
    pub shadow_instances: IntGaugeVec,
    /// `umbra_controller_errors_total{component}`: failures inside control loops.
    pub errors: IntCounterVec,
    /// `umbra_controller_tick_seconds`: how long one orchestrator tick took (every workload).
    pub tick_seconds: Histogram,
    /// `umbra_forecast_round_seconds`: how long the last refit of every series took.
    pub forecast_round_seconds: Gauge,
    /// `umbra_forecast_rounds_total`: refits of every series finished.
    pub forecast_rounds: IntCounter,
    /// `umbra_forecast_series_awaiting_selection`: series forecast by seasonal naive until
    /// their first model selection has its turn.
    pub forecast_awaiting_selection: IntGauge,
    /// `umbra_proxy_up{proxy}`: 1 if the proxy answered the last tick's read, 0 if not.
    pub proxy_up: IntGaugeVec,
    /// `umbra_controller_leader`: 1 while this replica acts (always, without leader election).
    pub leader: IntGauge,
    /// `umbra_heap_allocated_bytes`: live heap, read at each scrape (absent without a reader).
    heap: IntGauge,
    /// `umbra_heap_peak_bytes`: the most the live heap has been since start.
    heap_peak: IntGauge,
}

impl ControllerMetrics {
    /// Registers everything.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let forecast = GaugeVec::new(
            Opts::new(
                "umbra_forecast",
                "Forecast demand for the next step, by quantile.",
            ),
            &["workload", "pool", "resource", "quantile"],
        )?;
        let forecast_mase = GaugeVec::new(
            Opts::new(
                "umbra_forecast_mase",
                "Backtest MASE of the chosen model (below 1 beats seasonal naive).",
            ),
            &["workload", "pool", "resource"],
        )?;
        let learned_rise = GaugeVec::new(
            Opts::new(
                "umbra_learned_rise",
                "Rise of demand within one instance start-up at the policy's rise_quantile: the shadow's learned headroom over observed demand.",
            ),
            &["workload", "pool", "resource"],
        )?;
        let migrations = IntCounterVec::new(
            Opts::new("umbra_migrations_total", "Finished migrations by outcome."),
            &["workload", "outcome"],
        )?;
        let migration_state = IntGaugeVec::new(
            Opts::new("umbra_migration_state", "Migration phase code."),
            &["workload"],
        )?;
        let shadow_instances = IntGaugeVec::new(
            Opts::new(
                "umbra_shadow_instances",
                "Shadow instances by size (idle or full).",
            ),
            &["workload", "size"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "umbra_controller_errors_total",
                "Errors inside the controller's loops.",
            ),
            &["component"],
        )?;
        let tick_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "umbra_controller_tick_seconds",
                "How long one orchestrator tick took, every workload included.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let forecast_round_seconds = Gauge::new(
            "umbra_forecast_round_seconds",
            "How long the last refit of every forecast series took.",
        )?;
        let forecast_rounds = IntCounter::new(
            "umbra_forecast_rounds_total",
            "Refits of every forecast series finished.",
        )?;
        let forecast_awaiting_selection = IntGauge::new(
            "umbra_forecast_series_awaiting_selection",
            "Series forecast by seasonal naive until their first model selection has its turn.",
        )?;
        let proxy_up = IntGaugeVec::new(
            Opts::new(
                "umbra_proxy_up",
                "1 if the proxy answered the controller's last read of its state, 0 if not.",
            ),
            &["proxy"],
        )?;
        let leader = IntGauge::new(
            "umbra_controller_leader",
            "1 while this controller replica acts (holds the lease), 0 while it follows.",
        )?;
        let heap = IntGauge::new(
            "umbra_heap_allocated_bytes",
            "Bytes allocated on the heap and not yet freed (RSS also counts what the allocator keeps).",
        )?;
        let heap_peak = IntGauge::new(
            "umbra_heap_peak_bytes",
            "The most bytes the heap has held at once since the process started.",
        )?;
        for c in [
            Box::new(forecast.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(forecast_mase.clone()),
            Box::new(learned_rise.clone()),
            Box::new(migrations.clone()),
            Box::new(migration_state.clone()),
            Box::new(shadow_instances.clone()),
            Box::new(errors.clone()),
            Box::new(proxy_up.clone()),
            Box::new(tick_seconds.clone()),
            Box::new(forecast_round_seconds.clone()),
            Box::new(forecast_rounds.clone()),
            Box::new(forecast_awaiting_selection.clone()),
            Box::new(leader.clone()),
        ] {
            registry.register(c)?;
        }
        if HEAP_READER.get().is_some() {
            registry.register(Box::new(heap.clone()))?;
            registry.register(Box::new(heap_peak.clone()))?;
        }
        Ok(ControllerMetrics {
            registry,
            forecast,
            forecast_mase,
            learned_rise,
            migrations,
            migration_state,
            shadow_instances,
            errors,
            tick_seconds,
            forecast_round_seconds,
            forecast_rounds,
            forecast_awaiting_selection,
            proxy_up,
            leader,
            heap,
            heap_peak,
        })
    }

    /// Counts an error in a loop.
    pub fn error(&self, component: &str) {
        self.errors.with_label_values(&[component]).inc();
    }

    /// Text exposition.
    pub fn encode(&self) -> String {
        if let Some((now, peak)) = heap_allocated() {
            self.heap.set(i64::try_from(now).unwrap_or(i64::MAX));
            self.heap_peak.set(i64::try_from(peak).unwrap_or(i64::MAX));
        }
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_heap_is_read_at_each_scrape() {
        set_heap_reader(|| (4096, 8192));
        let m = ControllerMetrics::new().expect("metrics register");
        let text = m.encode();
        assert!(text.contains("umbra_heap_allocated_bytes 4096"), "{text}");
        assert!(text.contains("umbra_heap_peak_bytes 8192"), "{text}");
    }
}
