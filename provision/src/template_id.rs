//! What identifies a template and a workload to a backend: a stable fingerprint of how
//! instances are started, and the check that a workload name is safe in file, cgroup and
//! container names.

use super::{InstanceTemplate, ProvisionError};

/// A fingerprint of everything that changes what an instance runs (command, image, port,
/// environment), so instances started from an older template can be found and replaced.
///
/// FNV-1a rather than `DefaultHasher`, whose output may change between Rust releases: a
/// controller upgrade must not look like a template change and restart every instance.
pub(crate) fn fingerprint(template: &InstanceTemplate) -> String {
    let canonical = serde_json::json!({
        "command": template.command,
        "image": template.image,
        "container_port": template.container_port,
        "env": template.env,
    })
    .to_string();
    format!("{:016x}", fnv1a(canonical.as_bytes()))
}

/// What tells two controllers on one host apart (two `umbra up`s, test stacks in parallel),
/// so neither ever adopts or stops the other's instances of a same-named workload: a short
/// hash of the controller's state directory, stable across restarts.
pub fn deployment_id(state_dir: &std::path::Path) -> String {
    let canonical = state_dir
        .canonicalize()
        .unwrap_or_else(|_| state_dir.to_path_buf());
    format!(
        "{:08x}",
        fnv1a(canonical.as_os_str().as_encoded_bytes()) as u32
    )
}

/// FNV-1a, 64 bits: stable across Rust releases and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Accepts workload names usable as a file, cgroup and container name: 1-100 of
/// `A-Za-z0-9_.-`, not starting with `.` or `-`.
pub(crate) fn check_local_name(
    backend: &'static str,
    workload: &str,
) -> Result<(), ProvisionError> {
    let charset_ok = workload
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    let ok = charset_ok && (1..=100).contains(&workload.len()) && !workload.starts_with(['.', '-']);
    ok.then_some(()).ok_or_else(|| ProvisionError::Template {
        backend,
        workload: workload.to_string(),
        message: "the name must be 1-100 of A-Za-z0-9_.- and not start with '.' or '-'".into(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn template() -> InstanceTemplate {
        InstanceTemplate {
            workload: "web".into(),
            command: vec!["srv".into(), "{port}".into()],
            image: None,
            container_port: 8080,
            health_path: Some("/healthz".into()),
            env: [("A".to_string(), "1".to_string())].into(),
        }
    }

    #[test]
    fn fingerprint_is_stable_and_follows_what_runs() {
        let base = fingerprint(&template());
        assert_eq!(base, fingerprint(&template()));
        assert_eq!(base.len(), 16);
        let other_health = InstanceTemplate {
            health_path: None,
            ..template()
        };
        assert_eq!(
            base,
            fingerprint(&other_health),
            "health checks do not restart instances"
        );
        let other_env = InstanceTemplate {
            env: Default::default(),
            ..template()
        };
        assert_ne!(base, fingerprint(&other_env));
        let other_command = InstanceTemplate {
            command: vec!["srv".into()],
            ..template()
        };
        assert_ne!(base, fingerprint(&other_command));
    }

    #[test]
    fn local_names_reject_paths_and_hidden_files() {
        assert!(check_local_name("process", "web_api-2.v1").is_ok());
        for bad in ["", "../etc", "a/b", ".hidden", "-x", "sp ace"] {
            let err = check_local_name("process", bad).unwrap_err().to_string();
            assert!(err.contains("A-Za-z0-9_.-"), "{bad:?}: {err}");
        }
    }
}
