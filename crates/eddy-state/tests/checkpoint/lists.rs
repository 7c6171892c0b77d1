//! Operator-state lists: stored per old subtask, shared out by `redistribute`.

use eddy_state::checkpoint::{redistribute, write_snapshot, SnapshotReader};
use eddy_state::{ListEntries, OperatorSnapshot, Redistribution};
use proptest::prelude::*;

use crate::fixture::{few_cases, header};

/// Items per old subtask, each unique (its old subtask and index).
fn unique_items() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    proptest::collection::vec(0usize..6, 0..6).prop_map(|lens| {
        lens.iter().enumerate().map(|(s, len)| (0..*len).map(|i| vec![s as u8, i as u8]).collect()).collect()
    })
}

proptest! {
    #[test]
    fn split_hands_out_every_item_exactly_once(items in unique_items()) {
        let mut all: Vec<_> = items.iter().flatten().cloned().collect();
        all.sort();
        for parallelism in 1..=8 {
            let shares: Vec<_> = (0..parallelism)
                .map(|s| redistribute(items.clone(), Redistribution::Split, s, parallelism))
                .collect();
            let mut got: Vec<_> = shares.iter().flatten().cloned().collect();
            got.sort();
            prop_assert_eq!(&got, &all);
            // Round robin: shares differ in size by at most one.
            let sizes: Vec<_> = shares.iter().map(Vec::len).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn broadcast_gives_everyone_old_subtask_0(items in unique_items(), parallelism in 1usize..8) {
        for s in 0..parallelism {
            let share = redistribute(items.clone(), Redistribution::Broadcast, s, parallelism);
            prop_assert_eq!(share, items.first().cloned().unwrap_or_default());
        }
    }
}

#[test]
fn split_deals_pooled_items_round_robin() {
    let items = vec![vec![b"a".to_vec(), b"b".to_vec()], vec![], vec![b"c".to_vec()]];
    assert_eq!(redistribute(items.clone(), Redistribution::Split, 0, 2), vec![b"a".to_vec(), b"c".to_vec()]);
    assert_eq!(redistribute(items.clone(), Redistribution::Split, 1, 2), vec![b"b".to_vec()]);
    assert!(redistribute(items, Redistribution::Split, 2, 2).is_empty());
}

proptest! {
    #![proptest_config(few_cases(8))]

    #[test]
    fn lists_survive_a_snapshot_with_empty_subtasks(items in unique_items()) {
        let dir = tempfile::tempdir().unwrap();
        let list = ListEntries { name: "splits".into(), redistribution: Redistribution::Split, items: items.clone() };
        let op = OperatorSnapshot { uid: "src".into(), parallelism: items.len(), lists: vec![list], ..Default::default() };
        write_snapshot(dir.path(), header(1, 4), &[op]).unwrap();
        let reader = SnapshotReader::open(dir.path()).unwrap();
        reader.verify().unwrap();
        let read = reader.list("src", "splits").unwrap();
        prop_assert_eq!(&read, &items);
        let mut restored: Vec<_> = (0..3).flat_map(|s| redistribute(read.clone(), Redistribution::Split, s, 3)).collect();
        restored.sort();
        let mut all: Vec<_> = items.into_iter().flatten().collect();
        all.sort();
        prop_assert_eq!(restored, all);
    }
}
