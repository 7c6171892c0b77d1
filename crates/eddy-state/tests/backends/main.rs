//! One test suite, run against every backend: each test is a generic function over a
//! [`Fixture`], instantiated once per backend by `suite!`, so the heap and sled backends
//! are held to exactly the same behaviour.

mod corruption;
mod errors;
mod fixture;
mod model;
mod namespaced;
mod portability;
mod rescale;
mod timers;
mod ttl;

/// Instantiates each listed generic test for each backend: `heap::name`, `sled::name`, and
/// `any::name` ([`AnyBackend`](eddy_state::AnyBackend) over sled).
macro_rules! suite {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod heap {
            $(#[test] fn $test() { crate::$module::$test::<crate::fixture::Heap>() })*
        }
        mod sled {
            $(#[test] fn $test() { crate::$module::$test::<crate::fixture::Sled>() })*
        }
        mod any {
            $(#[test] fn $test() { crate::$module::$test::<crate::fixture::Any>() })*
        }
    };
}

suite!(
    model::every_state_kind_matches_a_model_across_keys,
    model::handles_opened_once_follow_the_current_key,
    model::map_iteration_spans_chunks_and_tolerates_state_use_in_the_loop,
    ttl::ttl_states_match_a_model_with_a_fake_clock,
    ttl::on_create_and_write_expires_despite_reads,
    ttl::on_read_and_write_reads_keep_values_alive,
    ttl::list_elements_and_map_entries_expire_one_by_one,
    ttl::incremental_cleanup_removes_keys_nobody_reads,
    ttl::snapshots_leave_expired_state_out,
    ttl::a_state_gains_a_ttl_across_a_restore,
    timers::due_timers_fire_in_order_once_each_like_a_model,
    timers::timers_are_deduplicated_deletable_and_set_the_current_key,
    corruption::arbitrary_stored_bytes_never_panic,
    corruption::damaged_bytes_are_errors_naming_the_state,
    corruption::malformed_snapshots_are_refused,
    errors::reusing_a_name_with_another_kind_type_or_ttl_is_an_error,
    errors::keys_outside_the_store_key_groups_are_refused,
    errors::state_before_a_current_key_is_an_error,
    rescale::snapshot_at_parallelism_2_restores_at_parallelism_3,
    namespaced::namespaced_state_matches_a_model,
    namespaced::namespaced_state_rescales_with_its_keys,
);
