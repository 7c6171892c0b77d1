//! The checkpoint store on S3 (s3s-fs on loopback): what the tasks and a bounded run keep
//! there round-trips, under a prefix, with the credentials from the environment.

use eddy_cluster::store::CheckpointStore;
use eddy_test_services::{Service, ACCESS_KEY, REGION, SECRET_KEY};

#[test]
fn checkpoints_round_trip_through_s3() {
    let Some(s3) = Service::s3s_fs() else { return };
    std::fs::create_dir_all(s3.dir().join("data/state")).unwrap();
    // What a deployment sets for the processes; this test binary is the only user.
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    std::env::set_var("AWS_REGION", REGION);
    let store = CheckpointStore::open("s3://state/apps/wc", Some(&s3.url())).unwrap();
    let (task, id) = ("sub-topology-1", "00000000000000000003-00000000000000ab");
    assert_eq!(store.get_checkpoint(task, 4, id).unwrap(), None);
    store.put_checkpoint(task, 4, id, b"window state".to_vec()).unwrap();
    assert_eq!(store.get_checkpoint(task, 4, id).unwrap().as_deref(), Some(&b"window state"[..]));
    assert!(s3.dir().join(format!("data/state/apps/wc/state/{task}/4/{id}.bin")).exists());
    store.delete_checkpoint(task, 4, id).unwrap();
    assert_eq!(store.get_checkpoint(task, 4, id).unwrap(), None);

    // The first process's end offsets are everyone's.
    assert_eq!(store.end_offsets(vec![10, 20]).unwrap(), vec![10, 20]);
    let other = CheckpointStore::open("s3://state/apps/wc", Some(&s3.url())).unwrap();
    assert_eq!(other.end_offsets(vec![11, 21]).unwrap(), vec![10, 20]);
    store.mark_done("sub-topology-1", 0).unwrap();
    store.mark_done("sub-topology-1", 3).unwrap();
    assert_eq!(other.done_count().unwrap(), 2);
}

/// A member's tasks start and commit at once, each on a thread of its own, with the member's
/// one store: its requests, from several threads at once, all complete and round-trip.
#[test]
fn one_store_serves_several_threads_at_once() {
    let Some(s3) = Service::s3s_fs() else { return };
    std::fs::create_dir_all(s3.dir().join("data/state")).unwrap();
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    std::env::set_var("AWS_REGION", REGION);
    let store = CheckpointStore::open("s3://state/apps/parallel", Some(&s3.url())).unwrap();
    std::thread::scope(|scope| {
        for partition in 0..8 {
            let store = &store;
            scope.spawn(move || {
                for offset in 0..5 {
                    let bytes = format!("{partition}/{offset}").into_bytes();
                    let id = format!("{offset}");
                    store.put_checkpoint("sub-topology-1", partition, &id, bytes.clone()).unwrap();
                    assert_eq!(store.get_checkpoint("sub-topology-1", partition, &id).unwrap(), Some(bytes));
                    let task = format!("app-sub-topology-1-{partition}");
                    assert!(store.claim_incarnation(&task, offset).unwrap());
                }
            });
        }
    });
    for partition in 0..8 {
        assert_eq!(store.newest_incarnation(&format!("app-sub-topology-1-{partition}")).unwrap(), Some(4));
        let newest = store.get_checkpoint("sub-topology-1", partition, "4").unwrap();
        assert_eq!(newest, Some(format!("{partition}/4").into_bytes()));
    }
}
