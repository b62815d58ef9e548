//! Umbra's one configuration schema: strict TOML parsed into raw types, validated into domain types.

mod controller;
mod edge;
mod error;
mod kubernetes;
mod load;
mod locate;
mod policy;
mod proxy;
mod raw;
mod upstream;
mod values;
mod workload;

pub use controller::{
    AlertFormat, ControllerSettings, InstanceSpec, Mode, PrometheusSource, ProvisionerKind,
    SignalFiles,
};
pub use edge::{
    AccessLogFormat, AccessLogSettings, AccessLogTarget, CertificatePaths, Cidr, ClientLimits,
    ForwardedSettings, TlsSettings,
};
pub use error::{ConfigError, FieldPath};
pub use kubernetes::LeaderElection;
pub use load::{Config, invalid_field, load, parse, parse_with_env};
pub use policy::{WorkloadPolicy, load_policy, parse_policy};
pub use proxy::{AdminToken, AdmissionSettings, Env, HealthSettings, ProxySettings, Timeouts};
pub use upstream::{HeaderRules, UpstreamProtocol, UpstreamTls, is_connection_header};
pub use workload::{GuardSpec, HostPattern, WorkloadName, WorkloadSpec};
