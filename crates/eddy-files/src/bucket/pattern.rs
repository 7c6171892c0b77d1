//! Path patterns: how a time, an error type and partition keys become a path such as
//! `year=2026/month=11/day=29/hour=15`.
//!
//! Two spellings compile to the same [`PathPattern`]:
//!
//! - **strftime** ([`PathPattern::strftime`]), chrono's syntax: `year=%Y/month=%m/day=%d/hour=%H`.
//!   Supported: `%Y` (year), `%y` (two-digit year), `%m`, `%d`, `%H`, `%M`, `%S` (month, day,
//!   hour, minute, second, two digits), `%j` (day of the year, three digits) and `%%`.
//! - **Firehose expressions** ([`PathPattern::expression`]), the syntax of Kinesis Data Firehose
//!   custom prefixes: `year=!{timestamp:yyyy}/month=!{timestamp:MM}/`. Inside
//!   `!{timestamp:…}` go Java date-time letters (`yyyy`, `yy`, `MM`, `dd`, `HH`, `mm`, `ss`,
//!   `DDD`, literal text in single quotes); `!{firehose:error-output-type}` is the error type of
//!   a record in the error prefix; `!{partitionKeyFromLambda:NAME}` (or `…FromQuery:NAME`) is a
//!   partition key that a function computes from the record.
//!
//! ```
//! use eddy_files::PathPattern;
//!
//! let hive = PathPattern::strftime("year=%Y/month=%m/day=%d/hour=%H").unwrap();
//! let firehose =
//!     PathPattern::expression("year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}").unwrap();
//! assert_eq!(hive, firehose);
//! assert_eq!(hive, PathPattern::hive_hourly());
//! ```

use std::fmt::Write as _;

use chrono::format::{Item, Numeric, Pad, StrftimeItems};
use chrono::{DateTime, Datelike, TimeZone, Timelike};

use crate::FilesError;

/// A compiled path pattern: literal text, time fields, the error type, partition keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    pieces: Vec<Piece>,
}

/// One part of a pattern. Adjacent literals are always merged, so equal patterns compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Time(TimeField),
    ErrorType,
    Key(String),
}

/// A field of the bucket's time, as digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeField {
    /// The proleptic year: four digits, with a sign outside 0..=9999 (as chrono's `%Y`).
    Year,
    /// The year modulo 100, two digits.
    Year2,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// Day of the year, three digits.
    DayOfYear,
}

impl TimeField {
    /// (strftime specifier, Java letters).
    const fn spellings(self) -> (&'static str, &'static str) {
        match self {
            TimeField::Year => ("%Y", "yyyy"),
            TimeField::Year2 => ("%y", "yy"),
            TimeField::Month => ("%m", "MM"),
            TimeField::Day => ("%d", "dd"),
            TimeField::Hour => ("%H", "HH"),
            TimeField::Minute => ("%M", "mm"),
            TimeField::Second => ("%S", "ss"),
            TimeField::DayOfYear => ("%j", "DDD"),
        }
    }

    const ALL: [TimeField; 8] = [
        TimeField::Year,
        TimeField::Year2,
        TimeField::Month,
        TimeField::Day,
        TimeField::Hour,
        TimeField::Minute,
        TimeField::Second,
        TimeField::DayOfYear,
    ];

    fn render<Tz: TimeZone>(self, time: &DateTime<Tz>, out: &mut String) {
        let _ = match self {
            TimeField::Year if (0..=9999).contains(&time.year()) => write!(out, "{:04}", time.year()),
            TimeField::Year => write!(out, "{:+05}", time.year()),
            TimeField::Year2 => write!(out, "{:02}", time.year().rem_euclid(100)),
            TimeField::Month => write!(out, "{:02}", time.month()),
            TimeField::Day => write!(out, "{:02}", time.day()),
            TimeField::Hour => write!(out, "{:02}", time.hour()),
            TimeField::Minute => write!(out, "{:02}", time.minute()),
            TimeField::Second => write!(out, "{:02}", time.second()),
            TimeField::DayOfYear => write!(out, "{:03}", time.ordinal()),
        };
    }
}

const SUPPORTED_STRFTIME: &str = "%Y %y %m %d %H %M %S %j %%";
const SUPPORTED_JAVA: &str = "yyyy yy MM dd HH mm ss DDD and 'quoted text'";

impl PathPattern {
    /// Hive-style hourly partitions: `year=YYYY/month=MM/day=DD/hour=HH`.
    pub fn hive_hourly() -> PathPattern {
        PathPattern::strftime("year=%Y/month=%m/day=%d/hour=%H").expect("a valid pattern")
    }

    /// Hive-style daily partitions: `year=YYYY/month=MM/day=DD`.
    pub fn hive_daily() -> PathPattern {
        PathPattern::strftime("year=%Y/month=%m/day=%d").expect("a valid pattern")
    }

    /// A pattern in chrono's strftime syntax, e.g. `%Y-%m-%d--%H` (Flink's default bucket
    /// format `yyyy-MM-dd--HH`).
    pub fn strftime(pattern: &str) -> Result<PathPattern, FilesError> {
        let error = |reason: String| FilesError::Pattern { pattern: pattern.to_string(), reason };
        if pattern.contains("!{") {
            return Err(error("`!{` starts a Firehose expression: use PathPattern::expression for those".into()));
        }
        let mut built = Builder::default();
        for item in StrftimeItems::new(pattern) {
            match item {
                Item::Literal(text) | Item::Space(text) => built.literal(text),
                Item::OwnedLiteral(text) | Item::OwnedSpace(text) => built.literal(&text),
                Item::Numeric(numeric, Pad::Zero) => match strftime_field(&numeric) {
                    Some(field) => built.push(Piece::Time(field)),
                    None => return Err(error(format!("unsupported specifier; supported are {SUPPORTED_STRFTIME}"))),
                },
                Item::Error => return Err(error(format!("invalid specifier; supported are {SUPPORTED_STRFTIME}"))),
                _ => return Err(error(format!("unsupported specifier; supported are {SUPPORTED_STRFTIME}"))),
            }
        }
        Ok(built.finish())
    }

    /// A pattern in Kinesis Data Firehose's expression syntax, e.g.
    /// `errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/`.
    pub fn expression(pattern: &str) -> Result<PathPattern, FilesError> {
        let error = |reason: String| FilesError::Pattern { pattern: pattern.to_string(), reason };
        let mut built = Builder::default();
        let mut rest = pattern;
        while let Some(start) = rest.find("!{") {
            built.literal(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| error("`!{` without a closing `}`".into()))?;
            let expression = &after[..end];
            match expression.split_once(':') {
                Some(("timestamp", format)) => java_time(format, &mut built).map_err(error)?,
                Some(("firehose", "error-output-type")) => built.push(Piece::ErrorType),
                None if expression == "error-output-type" => built.push(Piece::ErrorType),
                Some(("partitionKeyFromLambda" | "partitionKeyFromQuery", name)) if valid_key_name(name) => {
                    built.push(Piece::Key(name.to_string()))
                }
                Some(("partitionKeyFromLambda" | "partitionKeyFromQuery", name)) => {
                    return Err(error(format!("invalid partition key name {name:?}: use letters, digits and _")))
                }
                Some(("firehose", "random-string")) => {
                    return Err(error(
                        "!{firehose:random-string} is not supported: a random prefix would differ when a \
                         checkpoint is replayed (part names are unique already)"
                            .into(),
                    ))
                }
                _ => {
                    return Err(error(format!(
                        "unknown expression !{{{expression}}}: use !{{timestamp:FORMAT}}, \
                         !{{firehose:error-output-type}} or !{{partitionKeyFromLambda:NAME}}"
                    )))
                }
            }
            rest = &after[end + 1..];
        }
        built.literal(rest);
        Ok(built.finish())
    }

    /// The pattern in Firehose expression syntax; [`PathPattern::expression`] reads it back.
    pub fn to_expression(&self) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Time(field) => {
                    let _ = write!(out, "!{{timestamp:{}}}", field.spellings().1);
                }
                Piece::ErrorType => out.push_str("!{firehose:error-output-type}"),
                Piece::Key(name) => {
                    let _ = write!(out, "!{{partitionKeyFromLambda:{name}}}");
                }
            }
        }
        out
    }

    /// The pattern in strftime syntax, if it holds nothing but text and time fields.
    pub fn to_strftime(&self) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(&text.replace('%', "%%")),
                Piece::Time(field) => out.push_str(field.spellings().0),
                Piece::ErrorType | Piece::Key(_) => return None,
            }
        }
        Some(out)
    }

    /// Whether the pattern uses the time.
    pub fn uses_time(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Time(_)))
    }

    /// Whether the pattern names the error type.
    pub fn uses_error_type(&self) -> bool {
        self.pieces.contains(&Piece::ErrorType)
    }

    /// The partition keys the pattern names.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Key(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Appends the path for `time`, `error_type` and the keys' values (already escaped) to
    /// `out`. A piece whose value is missing is an error naming it.
    pub(crate) fn render<Tz: TimeZone>(
        &self,
        time: Option<&DateTime<Tz>>,
        error_type: Option<&str>,
        key: &dyn Fn(&str) -> Option<String>,
        out: &mut String,
    ) -> Result<(), String> {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Time(field) => field.render(time.ok_or("the pattern needs a time")?, out),
                Piece::ErrorType => out.push_str(error_type.ok_or("the pattern needs an error type")?),
                Piece::Key(name) => out.push_str(&key(name).ok_or_else(|| format!("no partition key {name:?}"))?),
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_expression())
    }
}

fn strftime_field(numeric: &Numeric) -> Option<TimeField> {
    Some(match numeric {
        Numeric::Year => TimeField::Year,
        Numeric::YearMod100 => TimeField::Year2,
        Numeric::Month => TimeField::Month,
        Numeric::Day => TimeField::Day,
        Numeric::Hour => TimeField::Hour,
        Numeric::Minute => TimeField::Minute,
        Numeric::Second => TimeField::Second,
        Numeric::Ordinal => TimeField::DayOfYear,
        _ => return None,
    })
}

/// Compiles Java date-time letters (`yyyy/MM/dd`) into time fields and literals.
fn java_time(format: &str, built: &mut Builder) -> Result<(), String> {
    if format.is_empty() {
        return Err("!{timestamp:} needs a format, e.g. !{timestamp:yyyy}".into());
    }
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // '' is one quote; 'text' is literal text, in which '' is one quote too.
            if chars.get(i + 1) == Some(&'\'') {
                built.literal("'");
                i += 2;
                continue;
            }
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unclosed quote in !{{timestamp:{format}}}")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            built.literal(&text);
        } else if c.is_ascii_alphabetic() {
            let run = chars[i..].iter().take_while(|&&d| d == c).count();
            let letters: String = chars[i..i + run].iter().collect();
            let field = TimeField::ALL.into_iter().find(|f| f.spellings().1 == letters).ok_or_else(|| {
                format!("unsupported {letters:?} in !{{timestamp:{format}}}: supported are {SUPPORTED_JAVA}")
            })?;
            built.push(Piece::Time(field));
            i += run;
        } else {
            built.literal(&c.to_string());
            i += 1;
        }
    }
    Ok(())
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Collects pieces, merging adjacent literals.
#[derive(Default)]
struct Builder {
    pieces: Vec<Piece>,
}

impl Builder {
    fn literal(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.pieces.last_mut() {
            Some(Piece::Literal(last)) => last.push_str(text),
            _ => self.pieces.push(Piece::Literal(text.to_string())),
        }
    }

    fn push(&mut self, piece: Piece) {
        match piece {
            Piece::Literal(text) => self.literal(&text),
            other => self.pieces.push(other),
        }
    }

    fn finish(self) -> PathPattern {
        PathPattern { pieces: self.pieces }
    }
}

#[cfg(test)]
mod tests {
    use chrono::format::Parsed;
    use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, Utc};
    use chrono_tz::Tz;
    use proptest::prelude::*;

    use super::*;

    /// Instants chrono can format: years -9999 to 99999.
    const MIN_MS: i64 = -377_705_116_800_000;
    const MAX_MS: i64 = 3_093_527_980_799_000;

    fn render_at<Z: TimeZone>(pattern: &PathPattern, time: &DateTime<Z>) -> String {
        let mut out = String::new();
        pattern.render(Some(time), Some("format-conversion-failed"), &|k| Some(format!("<{k}>")), &mut out).unwrap();
        out
    }

    fn utc(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
    }

    /// A random pattern: literal text (free of `!{`, `%` and quotes) and time fields.
    fn pattern_pieces() -> impl Strategy<Value = Vec<Piece>> {
        let piece = prop_oneof![
            "[a-z=/_. -]{1,6}".prop_map(Piece::Literal),
            (0..TimeField::ALL.len()).prop_map(|i| Piece::Time(TimeField::ALL[i])),
        ];
        prop::collection::vec(piece, 0..8)
    }

    fn built(pieces: Vec<Piece>) -> PathPattern {
        let mut builder = Builder::default();
        for piece in pieces {
            builder.push(piece);
        }
        builder.finish()
    }

    #[test]
    fn hive_and_flink_patterns() {
        let t = utc(1_764_428_400_123); // 2025-11-29T15:00:00.123Z
        assert_eq!(render_at(&PathPattern::hive_hourly(), &t), "year=2025/month=11/day=29/hour=15");
        assert_eq!(render_at(&PathPattern::hive_daily(), &t), "year=2025/month=11/day=29");
        let flink = PathPattern::strftime("%Y-%m-%d--%H").unwrap();
        assert_eq!(render_at(&flink, &t), "2025-11-29--15");
        let java = PathPattern::expression("!{timestamp:yyyy-MM-dd--HH}").unwrap();
        assert_eq!(flink, java);
        let quoted = PathPattern::expression("!{timestamp:'y='yyyy'/it''s'/DDD}").unwrap();
        assert_eq!(render_at(&quoted, &t), "y=2025/it's/333");
    }

    #[test]
    fn error_type_and_keys() {
        let p = PathPattern::expression("errors/!{firehose:error-output-type}/a=!{partitionKeyFromQuery:a}/").unwrap();
        assert!(p.uses_error_type() && !p.uses_time());
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(render_at(&p, &utc(0)), "errors/format-conversion-failed/a=<a>/");
        assert_eq!(p.to_strftime(), None);
        let mut out = String::new();
        assert!(p.render::<Utc>(None, None, &|_| None, &mut out).is_err());
    }

    #[test]
    fn bad_patterns_say_what_is_allowed() {
        for (pattern, expected) in [
            ("x/!{timestamp:yyyy", "closing"),
            ("!{timestamp:EEE}", "supported are"),
            ("!{timestamp:yyy}", "supported are"),
            ("!{timestamp:}", "needs a format"),
            ("!{timestamp:'open}", "unclosed quote"),
            ("!{nope:x}", "unknown expression"),
            ("!{partitionKeyFromLambda:a/b}", "invalid partition key"),
            ("!{firehose:random-string}", "replayed"),
        ] {
            let error = PathPattern::expression(pattern).unwrap_err().to_string();
            assert!(error.contains(expected), "{pattern}: {error}");
        }
        for pattern in ["%e", "%Q", "%s", "!{timestamp:yyyy}"] {
            assert!(PathPattern::strftime(pattern).is_err(), "{pattern}");
        }
    }

    /// Year, month, day and hour read back from a path made with `strftime`.
    fn parse_back(path: &str, strftime: &str) -> NaiveDateTime {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, path, StrftimeItems::new(strftime)).unwrap();
        let date = NaiveDate::from_ymd_opt(parsed.year().unwrap(), parsed.month().unwrap(), parsed.day().unwrap());
        date.unwrap().and_hms_opt(parsed.hour_div_12().unwrap() * 12 + parsed.hour_mod_12().unwrap(), 0, 0).unwrap()
    }

    /// The start of the local hour holding `time`, as instants (two in a repeated hour).
    fn local_hour_starts(zone: Tz, local_hour: NaiveDateTime) -> Vec<DateTime<Tz>> {
        match zone.from_local_datetime(&local_hour) {
            LocalResult::Single(t) => vec![t],
            LocalResult::Ambiguous(a, b) => vec![a, b],
            LocalResult::None => vec![],
        }
    }

    #[test]
    fn dst_days_in_new_york() {
        let zone: Tz = "America/New_York".parse().unwrap();
        let hourly = PathPattern::hive_hourly();
        let buckets_of_day = |day: &str| {
            let start = NaiveDateTime::parse_from_str(&format!("{day} 00:00:00"), "%Y-%m-%d %H:%M:%S").unwrap();
            let start = zone.from_local_datetime(&start).single().unwrap().with_timezone(&Utc);
            let next = zone.from_local_datetime(&(start.with_timezone(&zone).naive_local() + Duration::days(1)));
            let end = next.single().unwrap().with_timezone(&Utc);
            let mut buckets: Vec<String> = Vec::new();
            let mut t = start;
            while t < end {
                buckets.push(render_at(&hourly, &t.with_timezone(&zone)));
                t += Duration::minutes(30);
            }
            buckets
        };
        // Spring forward (2026-03-08): 02:00 is skipped, 23 hours, 23 buckets of two halves.
        let spring = buckets_of_day("2026-03-08");
        assert_eq!(spring.len(), 46);
        let distinct: std::collections::BTreeSet<_> = spring.iter().collect();
        assert_eq!(distinct.len(), 23);
        assert!(!spring.iter().any(|b| b.ends_with("hour=02")));
        // Fall back (2026-11-01): 01:00 repeats, 25 hours of records in 24 buckets.
        let autumn = buckets_of_day("2026-11-01");
        assert_eq!(autumn.len(), 50);
        let repeated = autumn.iter().filter(|b| b.ends_with("day=01/hour=01")).count();
        assert_eq!(repeated, 4, "the repeated hour's bucket holds two hours");
        assert_eq!(autumn.iter().collect::<std::collections::BTreeSet<_>>().len(), 24);
    }

    proptest! {
        /// Two implementations agree: this one, and chrono's strftime formatter.
        #[test]
        fn renders_as_chrono_formats(pieces in pattern_pieces(), ms in MIN_MS..MAX_MS) {
            let pattern = built(pieces);
            let strftime = pattern.to_strftime().unwrap();
            let time = utc(ms);
            prop_assert_eq!(render_at(&pattern, &time), time.format(&strftime).to_string());
        }

        #[test]
        fn expression_and_strftime_round_trip(pieces in pattern_pieces()) {
            let pattern = built(pieces);
            prop_assert_eq!(PathPattern::expression(&pattern.to_expression()).unwrap(), pattern.clone());
            prop_assert_eq!(PathPattern::strftime(&pattern.to_strftime().unwrap()).unwrap(), pattern);
        }

        /// In UTC an hourly path reads back as the start of the record's hour.
        #[test]
        fn hive_hourly_reads_back_in_utc(ms in 0i64..253_402_300_799_000) {
            let time = utc(ms);
            let path = render_at(&PathPattern::hive_hourly(), &time);
            let hour = parse_back(&path, "year=%Y/month=%m/day=%d/hour=%H").and_utc();
            prop_assert_eq!(hour.timestamp_millis(), ms.div_euclid(3_600_000) * 3_600_000);
        }

        /// In a zone with DST the path is the local wall clock: reading it back gives the start
        /// of the local hour holding the instant (one of two in a repeated hour, never a
        /// skipped hour).
        #[test]
        fn hourly_paths_follow_the_local_clock(ms in 0i64..4_102_444_800_000, zone in prop_oneof![
            Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Sydney"), Just("Asia/Kolkata"), Just("UTC")
        ]) {
            let zone: Tz = zone.parse().unwrap();
            let local = utc(ms).with_timezone(&zone);
            let path = render_at(&PathPattern::hive_hourly(), &local);
            let starts = local_hour_starts(zone, parse_back(&path, "year=%Y/month=%m/day=%d/hour=%H"));
            prop_assert!(!starts.is_empty(), "{path} names a skipped hour");
            let holds = |start: &DateTime<Tz>| {
                let from = start.timestamp_millis();
                (from..from + 3_600_000).contains(&ms)
            };
            prop_assert!(starts.iter().any(holds), "{} is not in {path} ({starts:?})", local);
        }
    }
}
