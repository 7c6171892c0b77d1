//! A small file system that fills up: a tmpfs of a few MiB mounted for one test, for the
//! tests of what a full disk does to checkpoints and output.
//!
//! Mounting needs privilege. As root the test mounts it directly. Otherwise it runs itself
//! again (the same test binary, only this test) inside a user and mount namespace of its own
//! (`unshare --user --map-root-user --mount`), where it may mount a tmpfs that nobody else
//! sees; the child processes it starts share that namespace. Where neither works the test is
//! skipped loudly, and fails under CI (`CI` set): a full-disk test that silently passes
//! proves nothing.

use std::path::PathBuf;
use std::process::Command;

/// Set in the re-run inside the namespace: the directory the tmpfs is mounted on.
const MOUNTED_AT: &str = "EDDY_TINY_DISK";

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct TinyDisk {
    pub path: PathBuf,
    /// The directory of a direct mount (none inside the namespace, which owns its own).
    dir: Option<tempfile::TempDir>,
}

/// Where the test that asked for a tiny disk goes on.
pub enum TinyDiskRun {
    /// Here, with the disk.
    Here(TinyDisk),
    /// The test ran in a namespace of its own and passed there: nothing is left to do here.
    RanInNamespace,
    /// This machine cannot mount one (already said on stderr; never under CI).
    Unavailable,
}

impl TinyDisk {
    /// A tmpfs of `size` (`mount`'s syntax: "4m") for the test named `test` (its function
    /// name, as `cargo test -- --exact` takes it). See the [module docs](self).
    pub fn for_test(test: &str, size: &str) -> TinyDiskRun {
        if let Some(path) = std::env::var_os(MOUNTED_AT) {
            return TinyDiskRun::Here(TinyDisk { path: PathBuf::from(path), dir: None });
        }
        if let Some(disk) = Self::mount(size) {
            return TinyDiskRun::Here(disk);
        }
        match rerun_in_namespace(test, size) {
            Some(()) => TinyDiskRun::RanInNamespace,
            None => {
                let message = format!("{test}: cannot mount a tmpfs, neither as root nor in a user namespace");
                assert!(std::env::var_os("CI").is_none(), "{message}");
                eprintln!("\n*** SKIPPED {message} ***\n");
                TinyDiskRun::Unavailable
            }
        }
    }

    /// Mounts one directly, or `None` where this process may not.
    fn mount(size: &str) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let options = format!("size={size}");
        let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", &options, "tmpfs"]).arg(&path).output();
        mounted.ok().filter(|o| o.status.success()).map(|_| TinyDisk { path, dir: Some(dir) })
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

/// Runs `test` again in this binary inside a user and mount namespace with a tmpfs of `size`
/// mounted: `Some(())` when it ran and passed (a failure there fails this test with its
/// output), `None` when no namespace could be made.
fn rerun_in_namespace(test: &str, size: &str) -> Option<()> {
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("disk");
    std::fs::create_dir(&at).unwrap();
    let mount = format!("mount -t tmpfs -o size={size} tmpfs \"$0\" && exec \"$@\"");
    let run = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &mount])
        .arg(&at)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(MOUNTED_AT, &at)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{test} failed in its namespace ({}):\n{stdout}\n{stderr}", run.status);
    assert!(stdout.contains("1 passed"), "{test} did not run in its namespace:\n{stdout}\n{stderr}");
    Some(())
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        // The namespace's mount goes with the namespace; only a direct one is unmounted.
        if self.dir.is_some() {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}
