//! The conformance suite: store behaviour every backend must show, written once over
//! `Arc<dyn Store>` and run by each backend's `tests/conformance.rs` through
//! [`conformance_tests!`].
//!
//! A [`Harness`] opens a database that is fresh for the test, and opens it *again*
//! (reopen cases) after the first handle is closed.

use convo_core::{ConversationManager, Store};
use std::future::Future;
use std::sync::Arc;

mod cases;
pub use cases::*;

/// Opens one fresh database, possibly several times.
pub trait Harness: Send + Sync {
    /// A handle on this harness's database (the same database on every call).
    fn open(&self) -> impl Future<Output = Arc<dyn Store>> + Send;
}

/// A manager for `user` and persona `Helper` over `store`.
pub fn manager(store: &Arc<dyn Store>, user: &str) -> ConversationManager {
    ConversationManager::new(store.clone(), user, "Helper").expect("valid user and persona")
}

/// Generates one `#[tokio::test]` per conformance case; `$make` builds a [`Harness`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            seed_operations_round_trip,
            items_keep_order_under_concurrent_appends,
            users_are_isolated,
            delete_cascades_to_items_search_and_jobs,
            item_pagination_edges,
            conversation_pagination_and_persona_filter,
            invalid_input_changes_nothing,
            function_call_outputs_must_answer_a_call,
            save_is_an_idempotent_upsert,
            reopening_keeps_everything,
            search_ranks_and_filters,
            search_scores_ignore_other_users,
            job_queue_leases_retries_and_fails,
            profile_jobs_of_a_user_run_in_order,
            finished_job_writes_effects_once,
            delete_during_a_job_writes_nothing,
            profile_ops_and_audit_trail,
            erase_user_removes_everything,
            import_keeps_ids_and_times,
            api_keys_round_trip,
            history_pairs_tool_calls_with_outputs,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $make;
                $crate::$case(&harness).await;
            }
        )*
    };
}
