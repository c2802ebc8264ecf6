//! The HTTP contract over real sockets, on both backends: one set of cases
//! per concern (a file each), generated for SQLite always and for Postgres
//! with `--features service-tests`.

mod cases;
mod deliveries;
mod events;
mod hardening;
mod limits;
mod oid4vp;
mod principals;
mod registry;
mod requests;
mod support;
mod tlog;
mod verifications;
mod webhook_support;
mod webhooks;
mod world;

macro_rules! http_suite {
    ($backend:ident, $open:path) => {
        mod $backend {
            http_suite!(@in cases $open;
                roles_are_enforced,
                bad_credentials_are_401_problems,
                invalid_input_is_rejected,
                idempotent_retries_return_the_first_answer,
                no_raw_key_leaks,
                openapi_covers_every_route_and_metrics_count_requests,
            );
            http_suite!(@in requests $open;
                request_ids_reach_events_and_headers_are_set,
                cors_is_off_unless_configured,
            );
            http_suite!(@in principals $open;
                key_lifecycle_register_rotate_grace_revoke,
                deactivation_refuses_the_lenders_keys,
                duplicate_emails_conflict_even_when_racing,
                auditors_register_and_authenticate,
                deactivation_reaches_other_instances,
                a_suspended_lender_authenticates_nothing_and_keeps_its_webhook,
                the_operator_lists_lenders_by_standing_and_email,
            );
            http_suite!(@in limits $open;
                failed_auth_is_rate_limited_per_address,
                each_key_has_a_request_budget,
                n_requests_with_one_key_cost_one_argon2_verification,
            );
            http_suite!(@in registry $open;
                issuers_register_and_are_listed_to_every_role,
                issuer_keys_are_added_and_retired,
                issuers_are_suspended_and_reinstated,
                status_lists_are_checked_published_and_replaced_only_by_newer_ones,
                lenders_may_not_write_the_registry,
            );
            http_suite!(@in verifications $open;
                a_valid_presentation_verifies_once_with_a_receipt,
                revoked_entries_and_retired_keys_fail_at_their_step,
                malformed_input_is_recorded_and_bad_shapes_are_refused,
                verifications_are_listed_from_the_read_model_right_after_their_position,
            );
            http_suite!(@in oid4vp $open;
                a_wallet_flow_conforms_and_keeps_values_out_of_the_log,
                the_wallet_endpoints_have_a_budget_per_address,
            );
            http_suite!(@in events $open;
                the_log_is_paged_and_tailed_for_auditors_only,
            );
            http_suite!(@in tlog $open;
                tlog_checkpoints_are_signed_notes_of_the_tree_over_the_head,
                tlog_proofs_verify_against_the_signed_root,
                tlog_proofs_refuse_impossible_sizes_and_other_roles,
                tlog_tiles_and_entry_bundles_hold_the_leaves,
                evidence_waits_for_a_checkpoint_then_proves_the_verification,
            );
            http_suite!(@in hardening $open;
                a_lender_verifies_only_for_its_own_audiences,
                oversized_presentations_are_recorded_rejections_that_spend_their_nonce,
                a_revoked_issuer_key_verifies_nothing_and_lists_say_why,
                status_lists_with_numbers_the_log_cannot_hold_are_refused_plainly,
                a_flood_of_wrong_secrets_costs_at_most_the_failure_budget,
                auditors_rotate_and_revoke_their_keys_like_lenders,
                a_command_past_the_time_limit_is_answered_with_its_result,
                live_tails_are_bounded_and_end_when_their_key_does,
            );
            http_suite!(@in webhooks $open;
                webhooks_are_vetted_against_ssrf_and_their_secret_is_shown_once,
                configuring_again_replaces_the_url_and_rotates_the_secret,
            );
            http_suite!(@in deliveries $open;
                deliveries_are_signed_and_survive_a_receiver_that_is_down,
                a_hanging_receiver_is_cut_at_the_timeout_and_delays_no_other_lender,
                a_spent_retry_budget_is_recorded_and_a_manual_retry_delivers,
                the_address_is_checked_again_at_each_delivery,
                a_removed_webhook_fails_its_pending_deliveries,
            );
        }
    };
    (@in $module:ident $open:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                crate::$module::$case($open).await;
            }
        )*
    };
}

http_suite!(sqlite, crate::support::sqlite_app);

#[cfg(feature = "service-tests")]
http_suite!(postgres, crate::support::postgres_app);
