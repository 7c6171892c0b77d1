//! Formatting of times, sizes, kinds and errors for people.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use eddy_state::{Redistribution, SnapshotKind, StateError, StoredStateKind};

/// Milliseconds since the epoch as RFC 3339 UTC, e.g. `2024-05-01T12:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| format!("{ms} ms since the epoch"), |t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A byte count in B, KiB, MiB or GiB.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The bytes the files under `dir` take (0 for what cannot be read).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `checkpoint` or `savepoint`.
pub fn kind(kind: SnapshotKind) -> &'static str {
    match kind {
        SnapshotKind::Checkpoint => "checkpoint",
        SnapshotKind::Savepoint => "savepoint",
    }
}

/// A state's kind, with its redistribution for lists.
pub fn state_kind(kind: &StoredStateKind) -> String {
    match kind {
        StoredStateKind::Keyed { .. } => "keyed".into(),
        StoredStateKind::List { redistribution: Redistribution::Split, .. } => "list (split)".into(),
        StoredStateKind::List { redistribution: Redistribution::Broadcast, .. } => "list (broadcast)".into(),
    }
}

/// A keyed state's key groups (`first..=last (count)`), or a list's old subtasks.
pub fn key_groups(kind: &StoredStateKind) -> String {
    match kind {
        StoredStateKind::Keyed { key_groups: Some((first, last)), key_group_count } => {
            format!("{first}..={last} ({key_group_count})")
        }
        StoredStateKind::Keyed { key_groups: None, .. } => "none".into(),
        StoredStateKind::List { subtasks: 1, .. } => "- (1 old subtask)".into(),
        StoredStateKind::List { subtasks, .. } => format!("- ({subtasks} old subtasks)"),
    }
}

/// What is wrong with a snapshot, without the path the caller already shows.
pub fn problem(error: &StateError) -> String {
    match error {
        StateError::Checkpoint { problem, .. } | StateError::Storage { problem, .. } => problem.clone(),
        other => other.to_string(),
    }
}

/// A snapshot's status after `error`: `unreadable: …` when its storage failed (a full or
/// failing disk, permissions: the snapshot may be fine), `damaged: …` otherwise.
pub fn status(error: &StateError) -> String {
    match error {
        StateError::Storage { .. } => format!("unreadable: {}", problem(error)),
        _ => format!("damaged: {}", problem(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }
}
