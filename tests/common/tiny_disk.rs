//! A small file system that fills up: a tmpfs of a few MiB mounted for one test (it needs
//! root), for the tests of what a full disk does to checkpoints and output.

use std::path::PathBuf;
use std::process::Command;

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct TinyDisk {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TinyDisk {
    /// Mounts one of `size` (`mount`'s syntax: "4m"), or `None` where this process may not
    /// mount (it needs root).
    pub fn mount(size: &str) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let options = format!("size={size}");
        let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", &options, "tmpfs"]).arg(&path).output();
        mounted.ok().filter(|o| o.status.success()).map(|_| TinyDisk { path, _dir: dir })
    }

    /// Fills the disk but for about `free` bytes; removing the returned file frees it.
    pub fn fill_leaving(&self, free: u64) -> PathBuf {
        let balloon = self.path.join("balloon");
        let stat = Command::new("df").args(["-B1", "--output=avail"]).arg(&self.path).output().unwrap();
        let available: u64 = String::from_utf8(stat.stdout).unwrap().lines().last().unwrap().trim().parse().unwrap();
        std::fs::write(&balloon, vec![0u8; available.saturating_sub(free) as usize]).unwrap();
        balloon
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
