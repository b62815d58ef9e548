//! Shared helpers for the end-to-end tests: binaries, free ports, upstream servers, processes.

pub mod binaries;
pub mod blackhole;
pub mod controller;
pub mod external;
pub mod fault;
pub mod grpc;
pub mod http;
pub mod keepalive;
pub mod load;
pub mod metrics;
pub mod ports;
pub mod procfs;
pub mod proxy;
pub mod store;
pub mod tls;
pub mod tmpfs;
pub mod upstream;
pub mod ws;

pub use binaries::binary;
pub use metrics::metric_value;
pub use ports::{free_port, free_ports};
pub use proxy::ProxyProcess;
pub use upstream::TestUpstream;
