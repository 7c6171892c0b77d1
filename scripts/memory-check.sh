#!/usr/bin/env bash
# Peak memory of word count on a long input with checkpoints (tests/memory.rs), at p=1 (the
# control) and p=2 (read in round-robin splits, its sources' watermarks aligned), against
# the bound stated there. Needs an optimised build and a long input, so it is not part of
# `cargo test`; both tests are #[ignore]d for that reason only and must pass here.
#
#   scripts/memory-check.sh                         # 500 MB of input (about a minute)
#   MEMORY_TEST_BYTES=1e9 scripts/memory-check.sh   # a longer input
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests run the word_count example binary, which this builds in release next to them.
cargo build --release --example word_count
cargo test --release --test memory -- --ignored --nocapture --test-threads 1
