//! A provisioner whose instances outlive a controller, like pods: each instance is a loopback
//! listener that accepts and drops connections, so the orchestrator's TCP probe finds it ready
//! (a loopback connect completes before even a paused clock can move).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use provision::{Instance, InstanceTemplate, ProvisionError, Provisioner, ShadowTarget};

#[derive(Default)]
pub struct Pods {
    pub instances: Vec<Instance>,
    /// The shadow's pods are gone (evicted, node lost) and none can be started.
    pub lost: bool,
}

#[derive(Clone, Default)]
pub struct FakeProvisioner {
    pub pods: Arc<Mutex<Pods>>,
}

async fn listening_instance(n: usize, target: ShadowTarget) -> Instance {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    Instance {
        id: format!("web-shadow-{n}"),
        addr,
        resources: target.resources,
        started_at: SystemTime::now(),
    }
}

#[async_trait]
impl Provisioner for FakeProvisioner {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn scale(
        &self,
        _: &InstanceTemplate,
        target: ShadowTarget,
    ) -> Result<Vec<Instance>, ProvisionError> {
        let (have, lost) = {
            let p = self.pods.lock().unwrap();
            (p.instances.len(), p.lost)
        };
        if lost {
            return Err(ProvisionError::Backend {
                backend: "fake",
                message: "no node can run the shadow".into(),
            });
        }
        let mut started = Vec::new();
        for n in have..target.instances as usize {
            started.push(listening_instance(n, target).await);
        }
        let mut p = self.pods.lock().unwrap();
        p.instances.extend(started);
        p.instances.truncate(target.instances as usize);
        for i in &mut p.instances {
            i.resources = target.resources;
        }
        Ok(p.instances.clone())
    }

    async fn instances(&self, _: &str) -> Result<Vec<Instance>, ProvisionError> {
        let p = self.pods.lock().unwrap();
        Ok(if p.lost { vec![] } else { p.instances.clone() })
    }

    async fn replace(&self, _: &InstanceTemplate, id: &str) -> Result<Instance, ProvisionError> {
        Err(ProvisionError::Backend {
            backend: "fake",
            message: format!("not replacing {id} in this test"),
        })
    }

    async fn stop_all(&self, _: &str) -> Result<(), ProvisionError> {
        self.pods.lock().unwrap().instances.clear();
        Ok(())
    }
}
