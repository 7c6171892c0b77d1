//! The standard one-input operators, one file each.

pub mod assign_timestamps;
#[cfg(feature = "tokio")]
pub mod async_queue;
pub mod filter;
pub mod flat_map;
pub mod keyed_process;
pub mod map;
#[cfg(feature = "tokio")]
pub mod map_async;
pub mod process;
pub mod rolling;
pub mod try_map;
pub mod union;
