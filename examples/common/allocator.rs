//! The allocator of the examples and benches: mimalloc, set up for a streaming job's memory.
//!
//! mimalloc suits eddy's hot path (many small, short-lived records), but two of its defaults make a checkpointing job look several times larger than
//! the memory it uses:
//!
//! - **Transparent huge pages.** mimalloc asks the kernel to back its memory with 2 MiB pages.
//!   A checkpoint touches memory sparsely (sled's tables and buffers while it writes a
//!   snapshot, the heaps of the short-lived threads that open, flush and close it), and each
//!   touched huge page counts whole. The `no_thp` feature (in `Cargo.toml`) turns that off.
//! - **Returning freed memory after a second.** mimalloc 3 keeps freed pages for 1 s before
//!   giving them back to the OS. A job that checkpoints more often than that (the memory
//!   check takes one every 300 ms) frees a checkpoint's buffers and allocates the next one's
//!   before anything is returned, so it holds several checkpoints' worth.
//!   [`return_freed_memory_promptly`] shortens that to 10 ms, mimalloc 2's default.
//!
//! Measured on word count, 500 MB with 300 ms checkpoints (docs/BENCHMARKS.md,
//! "Checkpoints"): peak RSS about 90 → 56 MiB at p=1 and 140 → 70 MiB at p=2, at the same
//! CPU time. A service that embeds eddy with mimalloc can do the same: build it with
//! `no_thp` and set `MIMALLOC_PURGE_DELAY=10` (or make the call below).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t`, mimalloc 3; the crate
/// exports no name for it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the OS 10 ms after it was freed instead of 1 s (see the module
/// docs). Call it first thing in `main`; an explicit `MIMALLOC_PURGE_DELAY` still wins.
pub fn return_freed_memory_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: reads and sets one integer option; mimalloc reads it at each purge.
        unsafe {
            // A mimalloc that numbers its options differently fails here in debug builds.
            debug_assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 1000, "not mimalloc 3's purge delay");
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 10);
        }
    }
}
