//! Our own threads start with Pingora's services, after its optional daemonization fork (a fork
//! keeps only the thread that forked). Signal handlers are installed before: they survive it.

use std::sync::Mutex;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;

/// A thread to start later.
pub type Starter = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

/// A named thread running `body`, started by [`ThreadStarter`].
pub fn deferred(name: &'static str, body: impl FnOnce() + Send + 'static) -> Starter {
    Box::new(move || {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
            .map(drop)
    })
}

/// Starts every deferred thread when Pingora starts its services.
pub struct ThreadStarter(Mutex<Vec<Starter>>);

impl ThreadStarter {
    /// Starts `threads` once the service runs.
    pub fn new(threads: Vec<Starter>) -> Self {
        ThreadStarter(Mutex::new(threads))
    }
}

#[async_trait]
impl BackgroundService for ThreadStarter {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let threads = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for start in threads {
            if let Err(e) = start() {
                // Without its signal, log or drain thread the process would misbehave quietly.
                tracing::error!(error = %e, "cannot start a thread; exiting");
                std::process::exit(1);
            }
        }
    }
}
