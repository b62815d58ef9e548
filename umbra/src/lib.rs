//! The `umbra` command: its subcommands (`up`, `run`, `status`, `forecast`, `backtest`, `simulate`, `demo`, `import`, `backend`) over the control plane in `controller`.

pub mod backend;
pub mod cli;
pub mod demo;
pub mod example_load;
pub mod supervise;
pub mod up;
