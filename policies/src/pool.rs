//! The two pools every workload has.

use serde::Serialize;

/// Which of a workload's two pools a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// The production pool.
    Primary,
    /// The pool being brought up ahead of demand; gets `shadow_weight` of the traffic.
    Shadow,
}

impl PoolKind {
    /// Both pools, primary first.
    pub const ALL: [PoolKind; 2] = [PoolKind::Primary, PoolKind::Shadow];

    /// The pool a request fails over to.
    pub fn other(self) -> PoolKind {
        match self {
            PoolKind::Primary => PoolKind::Shadow,
            PoolKind::Shadow => PoolKind::Primary,
        }
    }

    /// Label value used in metrics, logs and the `x-umbra-pool` header.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Primary => "primary",
            PoolKind::Shadow => "shadow",
        }
    }

    /// Dense index (primary 0, shadow 1) for per-pool arrays.
    pub fn index(self) -> usize {
        match self {
            PoolKind::Primary => 0,
            PoolKind::Shadow => 1,
        }
    }
}

impl std::fmt::Display for PoolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
