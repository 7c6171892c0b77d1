//! Partition values in paths, escaped the way Hive does: `airport=JF%2FK` for `JF/K`.
//!
//! A value may hold anything, but a path component may not hold `/`, and characters such as
//! `=`, `:` or `%` confuse readers that parse `key=value` directories. Hive percent-encodes
//! them (`FileUtils.escapePathName`) and readers (Hive, Spark, Trino, Athena) decode them back.
//! Two additions keep a bucket visible and inside the sink's prefix: a leading `.` is escaped
//! too (so a value is never `.`, `..` or a hidden name), and the empty value is Hive's
//! `__HIVE_DEFAULT_PARTITION__`.

use std::fmt::Write as _;

use percent_encoding::percent_decode_str;

/// What Hive escapes in partition values, besides control characters.
const HIVE: &[char] = &['"', '#', '%', '\'', '*', '/', ':', '=', '?', '\\', '{', '[', ']', '^'];

/// Hive's name for a missing (null or empty) partition value.
pub const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// `value` as a path component: Hive's escaping, plus a leading `.`.
pub fn escape_partition_value(value: &str) -> String {
    if value.is_empty() {
        return DEFAULT_PARTITION.to_string();
    }
    let mut escaped = String::with_capacity(value.len());
    for (i, c) in value.char_indices() {
        // A leading `.` would hide the bucket; a leading `_` only matters for the one value
        // that would read back as empty.
        let first = i == 0 && (c == '.' || (c == '_' && value == DEFAULT_PARTITION));
        if c.is_control() || HIVE.contains(&c) || first {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                let _ = write!(escaped, "%{byte:02X}");
            }
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// The value an escaped component stands for (what a reader decodes); `None` if it is not
/// valid UTF-8 once decoded.
pub fn unescape_partition_value(component: &str) -> Option<String> {
    if component == DEFAULT_PARTITION {
        return Some(String::new());
    }
    percent_decode_str(component).decode_utf8().ok().map(|v| v.into_owned())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hive_examples() {
        assert_eq!(escape_partition_value("JFK"), "JFK");
        assert_eq!(escape_partition_value("a/b=c:d"), "a%2Fb%3Dc%3Ad");
        assert_eq!(escape_partition_value("100%"), "100%25");
        assert_eq!(escape_partition_value(".."), "%2E.");
        assert_eq!(escape_partition_value(""), DEFAULT_PARTITION);
        assert_eq!(escape_partition_value(DEFAULT_PARTITION), "%5F_HIVE_DEFAULT_PARTITION__");
        assert_eq!(escape_partition_value("São Paulo"), "São Paulo");
    }

    proptest! {
        #[test]
        fn escaping_round_trips_and_stays_one_visible_component(
            value in prop_oneof![any::<String>(), "[._/=%A-Z]{0,6}", Just(DEFAULT_PARTITION.to_string())]
        ) {
            let escaped = escape_partition_value(&value);
            prop_assert_eq!(unescape_partition_value(&escaped), Some(value.clone()));
            prop_assert!(!escaped.is_empty());
            prop_assert!(!escaped.contains('/'));
            prop_assert!(!escaped.starts_with('.'));
            prop_assert!(!escaped.chars().any(|c| c.is_control()));
            let component = format!("k={escaped}");
            prop_assert!(object_store::path::Path::parse(component).is_ok());
        }
    }
}
