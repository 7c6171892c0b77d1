//! Kinesis positions in checkpoints (moto on loopback): every record exactly once through
//! stop-with-savepoint and restores at parallelism 2 → 3 → 1 while shards are split, and
//! children read only after their parents.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use eddy_stream::prelude::*;

/// Runs a job reading `stream` at `parallelism`, restored from `restore`. Unbounded, it runs
/// `during` and is then stopped with a savepoint (returned); bounded, it runs to its end.
fn run(
    endpoint: &str,
    parallelism: usize,
    restore: Option<&Path>,
    during: Option<&dyn Fn()>,
    dir: &Path,
) -> (Vec<Seen>, Option<PathBuf>) {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    env.enable_checkpointing(CheckpointConfig::on_request());
    if let Some(path) = restore {
        env.restore_from(path);
    }
    // Small batches, slowly: the stops come while shards are half read.
    let source = seen_source(endpoint, "trips").get_records_limit(5).get_records_interval(Duration::from_millis(40));
    let source = if during.is_none() { source.bounded() } else { source };
    let out = env
        .from_source(source.build().unwrap(), WatermarkStrategy::no_watermarks(), "kinesis")
        .uid("kinesis")
        .collect();
    let job = env.execute("trips").unwrap();
    let savepoint = during.map(|during| {
        during();
        job.stop_with_savepoint(dir.join(format!("savepoint-{parallelism}")), false).unwrap()
    });
    job.wait().unwrap();
    (out.take(), savepoint)
}

#[test]
fn every_record_once_through_restores_at_2_3_and_1_while_shards_split() {
    let Some((moto, client)) = moto() else { return };
    let url = moto.url();
    create_stream(&client, "trips", 4);
    put(&client, "trips", &records("first", 200));
    let dir = tempfile::tempdir().unwrap();
    let numbered = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>();

    // Parallelism 2: shard 1 splits mid-run, more records go to shards 2 and 3.
    let split_one = || {
        std::thread::sleep(Duration::from_millis(150));
        block(
            client
                .split_shard()
                .stream_name("trips")
                .shard_to_split("shardId-000000000001")
                .new_starting_hash_key((u128::MAX / 4 + u128::MAX / 8).to_string())
                .send(),
        )
        .unwrap();
        put_into(&client, "trips", 4, 2, &numbered("second", 30));
        put_into(&client, "trips", 4, 3, &numbered("second-b", 30));
        std::thread::sleep(Duration::from_millis(250));
    };
    let (mut all, first) = run(&url, 2, None, Some(&split_one), dir.path());

    // Parallelism 3: shard 2 splits mid-run; only shard 3 (never split) takes new records,
    // as moto keeps routing a split shard's keys to the closed parent.
    let split_two = || {
        std::thread::sleep(Duration::from_millis(150));
        block(
            client
                .split_shard()
                .stream_name("trips")
                .shard_to_split("shardId-000000000002")
                .new_starting_hash_key((u128::MAX / 2 + u128::MAX / 8).to_string())
                .send(),
        )
        .unwrap();
        put_into(&client, "trips", 4, 3, &numbered("third", 40));
        std::thread::sleep(Duration::from_millis(250));
    };
    let (more, second) = run(&url, 3, first.as_deref(), Some(&split_two), dir.path());
    assert!(!more.is_empty() && all.len() < 260, "the first run must stop half way and the second read on");
    all.extend(more);

    // Parallelism 1, bounded: the rest.
    let (rest, _) = run(&url, 1, second.as_deref(), None, dir.path());
    assert!(!rest.is_empty(), "the last run read nothing: the stops came too late to test restores");
    all.extend(rest);
    let model = read_all(&client, "trips");
    assert_eq!(model.len(), 300);
    let shards: std::collections::BTreeSet<_> = model.iter().map(|s| s.shard.as_str()).collect();
    assert!(shards.contains("shardId-000000000001") && shards.contains("shardId-000000000002"));
    assert_exactly_once(&all, &model);
}

#[test]
fn a_merged_shard_is_read_after_both_parents_even_on_another_subtask() {
    // moto copies the parents' records into the child of a merge (Kinesis would not), which
    // lets the order be seen: every copy must come after every original. Shards 0 and 2
    // belong to subtask 0, shard 1 to subtask 1, so the child waits for another subtask.
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "trips", 2);
    put(&client, "trips", &records("trip", 100));
    block(
        client
            .merge_shards()
            .stream_name("trips")
            .shard_to_merge("shardId-000000000000")
            .adjacent_shard_to_merge("shardId-000000000001")
            .send(),
    )
    .unwrap();
    let model = read_all(&client, "trips");
    assert_eq!(model.iter().filter(|s| s.shard == "shardId-000000000002").count(), 100);

    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let order = Arc::new(AtomicU64::new(0));
    let source = seen_source(&moto.url(), "trips").get_records_limit(7).bounded().build().unwrap();
    let out = env
        .from_source(source, WatermarkStrategy::no_watermarks(), "kinesis")
        .map(move |seen: Seen| (order.fetch_add(1, Ordering::SeqCst), seen))
        .collect();
    env.execute("merge").unwrap().wait().unwrap();
    let got = out.take();
    assert_exactly_once(&got.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(), &model);
    let last_parent = got.iter().filter(|(_, s)| s.shard != "shardId-000000000002").map(|(n, _)| *n).max().unwrap();
    let first_child = got.iter().filter(|(_, s)| s.shard == "shardId-000000000002").map(|(n, _)| *n).min().unwrap();
    assert!(last_parent < first_child, "the child started at {first_child}, before its parents ended at {last_parent}");
}
