//! Where the tests find the example binaries: a plain `cargo test` builds every example
//! next to the test binaries (`target/<profile>/examples/`).

use std::path::PathBuf;

/// The example binary `name`; fails, saying how to build it, when it is not there.
pub fn path(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let examples = test_binary.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps").join("examples");
    let binary = examples.join(name);
    assert!(binary.exists(), "{} is missing: run plain `cargo test`, which builds the examples", binary.display());
    binary
}
