//! A small tmpfs mounted over a directory (root only), unmounted when dropped, and a
//! filler that takes every free byte of it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A mounted tmpfs; unmounted on drop, lazily if something still holds it.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts `size_mib` MiB of tmpfs at `path` (created if missing); an error when this is
    /// not allowed (not root).
    pub fn mount(path: &Path, size_mib: u32) -> std::io::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let size = format!("size={size_mib}m");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "umbra-chaos"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "mount -t tmpfs failed ({status}); it needs root"
            )));
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// Writes a file named `filler` until the mount is full; returns the bytes written.
    pub fn fill(&self) -> std::io::Result<u64> {
        let mut f = std::fs::File::create(self.path.join("filler"))?;
        let mut written = 0u64;
        // Big chunks first, then ever smaller ones for the last partial pages.
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {
                written += chunk as u64;
            }
        }
        // Flushes what the page cache holds; the error (no space) is the point.
        let _full = f.sync_all();
        Ok(written)
    }

    /// Gives the space back.
    pub fn free(&self) -> std::io::Result<()> {
        std::fs::remove_file(self.path.join("filler"))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for _ in 0..20 {
            let unmounted = Command::new("umount")
                .arg(&self.path)
                .status()
                .is_ok_and(|s| s.success());
            if unmounted {
                return;
            }
            // A process that was just killed may still hold a file open for a moment.
            std::thread::sleep(Duration::from_millis(250));
        }
        let lazy = Command::new("umount").arg("-l").arg(&self.path).status();
        if !lazy.is_ok_and(|s| s.success()) {
            eprintln!("could not unmount {}", self.path.display());
        }
    }
}
