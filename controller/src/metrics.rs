//! The controller's Prometheus metrics.

use prometheus::{GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

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
    /// `umbra_controller_leader`: 1 while this replica acts (always, without leader election).
    pub leader: IntGauge,
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
        let leader = IntGauge::new(
            "umbra_controller_leader",
            "1 while this controller replica acts (holds the lease), 0 while it follows.",
        )?;
        for c in [
            Box::new(forecast.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(forecast_mase.clone()),
            Box::new(learned_rise.clone()),
            Box::new(migrations.clone()),
            Box::new(migration_state.clone()),
            Box::new(shadow_instances.clone()),
            Box::new(errors.clone()),
            Box::new(leader.clone()),
        ] {
            registry.register(c)?;
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
            leader,
        })
    }

    /// Counts an error in a loop.
    pub fn error(&self, component: &str) {
        self.errors.with_label_values(&[component]).inc();
    }

    /// Text exposition.
    pub fn encode(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
