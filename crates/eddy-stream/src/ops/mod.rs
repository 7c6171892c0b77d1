//! The standard one-input operators, one file each.

pub mod assign_timestamps;
pub mod filter;
pub mod flat_map;
pub mod keyed_process;
pub mod map;
pub mod process;
pub mod rolling;
pub mod try_map;
pub mod union;
