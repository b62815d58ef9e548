//! The controller's state in one SQLite file: history samples, signals, forecasts and the
//! persisted migration state machine. WAL mode: a `kill -9` loses nothing committed.

mod events;
mod migrations;
mod samples;
mod schema;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use events::StoredEvent;
pub use migrations::Transition;
pub use samples::{Resource, SeriesKey};

/// A store failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("store: {context}: {source}")]
pub struct StoreError {
    context: String,
    #[source]
    source: rusqlite::Error,
}

pub(crate) fn ctx(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError { context, source }
}

/// The SQLite-backed store. Cheap operations run inline; callers move bulk reads to a
/// blocking thread.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(ctx(format!("opening {}", path.display())))?;
        Self::init(conn)
    }

    /// An in-memory store (tests, simulations).
    pub fn in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory().map_err(ctx("opening in-memory store"))?)
    }

    fn init(conn: Connection) -> Result<Store, StoreError> {
        // WAL + NORMAL: committed transactions survive a process crash (kill -9); only an OS
        // crash can lose the last few, which is the trade-off SQLite documents for WAL.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(ctx("enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(ctx("setting synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(ctx("setting busy timeout"))?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
