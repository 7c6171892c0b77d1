//! The backends under test, each able to open a fresh, empty instance.

use eddy_state::{AnyBackend, HeapBackend, SledBackend, StateBackend};
use tempfile::TempDir;

/// A backend kind under test.
pub trait Fixture {
    /// The backend.
    type Backend: StateBackend;
    /// Property-test cases for this backend (sled opens a database per case).
    const CASES: u32;
    /// A fresh backend, and what must live as long as it (a temporary directory).
    fn open(max_parallelism: usize) -> (Self::Backend, Option<TempDir>);
}

/// [`HeapBackend`].
pub struct Heap;

impl Fixture for Heap {
    type Backend = HeapBackend;
    const CASES: u32 = 256;
    fn open(max_parallelism: usize) -> (HeapBackend, Option<TempDir>) {
        (HeapBackend::new(max_parallelism).unwrap(), None)
    }
}

/// [`SledBackend`] in a temporary directory.
pub struct Sled;

impl Fixture for Sled {
    type Backend = SledBackend;
    const CASES: u32 = 64;
    fn open(max_parallelism: usize) -> (SledBackend, Option<TempDir>) {
        let dir = tempfile::tempdir().unwrap();
        (SledBackend::open(dir.path(), max_parallelism).unwrap(), Some(dir))
    }
}

/// [`AnyBackend`] (here over sled), the run-time choice: checks its forwarding.
pub struct Any;

impl Fixture for Any {
    type Backend = AnyBackend;
    const CASES: u32 = 32;
    fn open(max_parallelism: usize) -> (AnyBackend, Option<TempDir>) {
        let (backend, dir) = Sled::open(max_parallelism);
        (AnyBackend::from(backend), dir)
    }
}

/// A proptest runner with the fixture's number of cases.
pub fn runner<F: Fixture>() -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: F::CASES,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })
}
