//! The event store contract suite: one set of cases, generated for each
//! backend by `store_contract_suite!`. The SQLite instance runs everywhere on
//! files in a temporary directory; the Postgres instance needs a server and
//! runs with `--features service-tests` (as `.ci/run` does), each test in a
//! database of its own.

mod cases;
mod harness;

/// Generates one `#[tokio::test]` per case (named `module::case` under
/// `cases`) for a backend's harness.
macro_rules! store_contract_suite {
    ($backend:ident, $harness:path) => {
        mod $backend {
            store_contract_suite!(@cases $harness;
                appends::expected_version_any,
                appends::expected_version_no_stream,
                appends::expected_version_exact,
                appends::duplicate_event_ids,
                appends::events_refuse_update_and_delete,
                appends::head_and_metadata,
                appends::invalid_appends_are_refused,
                appends::numbers_the_log_cannot_hold_exactly_are_refused,
                concurrency::racing_writers_on_one_stream,
                concurrency::racing_no_stream_creators,
                concurrency::writers_on_distinct_streams,
                concurrency::two_writers_share_one_log,
                concurrency::multi_stream_appends_are_atomic,
                concurrency::category_heads_move_with_their_streams,
                reads::read_all_paging,
                reads::events_read_from_memory_are_the_stored_events,
                reads::read_stream_in_version_order,
                reads::subscription_resumes_after_restart,
                secrets::secrets_are_written_with_their_append,
                secrets::webhook_secrets_move_to_the_sealing_key,
                checkpoints::checkpoints_are_signed_once_and_survive_restarts,
                checkpoints::cosignatures_are_served_and_call_for_no_checkpoint,
                checkpoints::events_appended_while_signing_are_checkpointed_when_idle,
                tree::the_tree_follows_the_log,
                tree::a_rebuilt_tree_has_the_same_hashes,
                tree::stored_leaves_are_the_envelopes_leaves,
            );
        }
    };
    (@cases $harness:path; $($module:ident::$case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let harness = $harness().await;
                crate::cases::$module::$case(&harness).await;
            }
        )*
    };
}

store_contract_suite!(sqlite, crate::harness::sqlite);

#[cfg(feature = "service-tests")]
store_contract_suite!(postgres, crate::harness::postgres);
