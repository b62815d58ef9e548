//! Command-line subcommands of `umbra`, as functions the clap entry point calls.

pub mod forecast;
pub mod simulate;
pub mod status;
