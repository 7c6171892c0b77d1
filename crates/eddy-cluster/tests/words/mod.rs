//! What the distributed word-count tests share: seeded input lines, the Kafka source that
//! reads them, the exactly-once sink of the result rows, and the members' logs.

use eddy_kafka::{DeliveryGuarantee, KafkaSink, KafkaSource, Text};

/// Input partitions (so tasks per sub-topology).
pub const PARTITIONS: i32 = 4;

/// Per partition `p`, `lines[p].0` lines `<ms>\t<words>`, each up to `lines[p].1` ms after
/// the one before (so in event-time order: nothing is late), of 1 to `most_words` words
/// `w<n>`, `n` below `vocabulary`, from a generator seeded with `seed`.
pub fn generate(seed: u64, lines: &[(usize, u64)], most_words: u64, vocabulary: u64) -> Vec<Vec<String>> {
    let mut seed = seed;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    (0..PARTITIONS)
        .map(|p| {
            let mut time = 1_767_225_600_000 + p as i64 * 37;
            let (lines, step) = lines[p as usize];
            (0..lines)
                .map(|_| {
                    time += next(step) as i64;
                    let words: Vec<String> =
                        (0..1 + next(most_words)).map(|_| format!("w{}", next(vocabulary))).collect();
                    format!("{time}\t{}", words.join(" "))
                })
                .collect()
        })
        .collect()
}

/// The source of `topic`: `<ms>\t<text>` lines, event time from the prefix.
pub fn lines(brokers: &str, topic: &str) -> KafkaSource<String> {
    KafkaSource::builder()
        .brokers(brokers)
        .topics([topic])
        .build()
        .unwrap()
        .timestamps(|line: &String| line.split_once('\t').and_then(|(ms, _)| ms.parse().ok()).unwrap_or(0))
        .unwrap()
}

/// The words of a line.
pub fn words(line: String) -> Vec<String> {
    let (_, text) = line.split_once('\t').unwrap_or_default();
    text.split(' ').map(String::from).collect()
}

/// The exactly-once sink of rows to `topic`.
pub fn rows(brokers: &str, topic: &str) -> KafkaSink<String> {
    KafkaSink::builder()
        .brokers(brokers)
        .topic(topic)
        .serializer(Text)
        .delivery(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix(format!("{topic}-sink"))
        .build()
        .unwrap()
}

/// The tests' logs on stderr, filtered by `EDDY_TEST_LOG` (`RUST_LOG` syntax, e.g.
/// `eddy_cluster=debug`); none without it.
pub fn logs() {
    if let Ok(filter) = std::env::var("EDDY_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_thread_names(true)
            .with_test_writer()
            .try_init();
    }
}
