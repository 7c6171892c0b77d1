//! What the version-1 fixtures in `v1/` hold: the operators written into them (see
//! `v1_fixture.rs`). Never change this: the fixtures were made from it.

use eddy_state::{KeyedEntries, ListEntries, OperatorSnapshot, Redistribution, SnapshotHeader, SnapshotKind};

/// The fixtures' header: id 7, 16 key groups, of the given kind.
pub fn header(kind: SnapshotKind) -> SnapshotHeader {
    SnapshotHeader {
        job: "v1 job".into(),
        id: 7,
        kind,
        created_ms: 1_764_460_800_000,
        max_parallelism: 16,
        finished: false,
    }
}

/// A source with a split list, and a counter with two keyed states, one of them spanning
/// three chunks in key group 3.
pub fn operators() -> Vec<OperatorSnapshot> {
    let counts = (0..60u16).map(|i| (i % 16, format!("key{i}").into_bytes(), u64::from(i).to_le_bytes().to_vec()));
    let crowded = (0..2500u32).map(|i| (3, i.to_be_bytes().to_vec(), vec![(i % 251) as u8]));
    vec![
        OperatorSnapshot {
            uid: "source".into(),
            name: "Source".into(),
            parallelism: 2,
            keyed: vec![],
            lists: vec![ListEntries {
                name: "offsets".into(),
                redistribution: Redistribution::Split,
                items: vec![vec![b"split-0:17".to_vec()], vec![b"split-1:4".to_vec(), b"split-2:0".to_vec()]],
            }],
        },
        OperatorSnapshot {
            uid: "counter".into(),
            name: "Count".into(),
            parallelism: 2,
            keyed: vec![
                KeyedEntries { state: "count".into(), entries: counts.collect() },
                KeyedEntries { state: "crowded".into(), entries: crowded.collect() },
            ],
            lists: vec![],
        },
    ]
}
