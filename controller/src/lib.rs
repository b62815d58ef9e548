//! umbra's control plane as a library: the binary in `main.rs` is a thin shell over it.

pub mod cli;
pub mod provision;
