/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/storage/repl/test_repl.h - shared by test_repl.c,
 * test_repl_sync.c, test_repl_cache.c, test_repl_subs.c,
 * test_repl_capture.c and test_repl_crash.c, the files of
 * the storage_repl program: test GUIDs,
 * the Maildir fixture, the save/store/expunge/sync helpers and the tests
 * of test_repl_sync.c.
 */
#ifndef STOWD_TESTS_STORAGE_TEST_REPL_H
#define STOWD_TESTS_STORAGE_TEST_REPL_H

#include <limits.h>
#include <stdint.h>

#include "storage/repl/repl.h"
#include "tests/unit/storage/util.h"

#define G1 "0190f3a2b4c8d2a1e5f6a7b8c9d0e1f2"
#define G2 "0190f3a2b4c9000100000000deadbeef"
#define G3 "0190f3a2c2bb7a3b0000111122223333"
#define BODY "Subject: hi\r\n\r\nbody\n"

struct fixture {
	struct tu_tree t;           /* first: tu_tree_new, tu_tree_teardown */
	char md[PATH_MAX];          /* the Maildir */
	struct store_repl_ctx c;
};

/* GUIDS collected. */
struct seen {
	size_t n;
	struct store_msg_info m[16];
};

/* A sealed memfd holding body. */
int body_fd(const char *body);
struct store_stamp stamp(uint64_t modseq, const char *origin);
/* Replica operations on box of the fixture; the result is returned. */
struct store_repl_result save(struct fixture *f, const char *box,
			      const char *guid, uint64_t modseq,
			      const char *origin, uint32_t hint,
			      const char *flags);
struct store_repl_result store(struct fixture *f, const char *box,
			       const char *guid, uint64_t modseq,
			       const char *origin, const char *deltas);
struct store_repl_result expunge(struct fixture *f, const char *box,
				 const char *guid, uint64_t modseq);
struct store_mbox_state sync_box(struct fixture *f, const char *box);
const struct store_msg_info *seen_find(const struct seen *s, const char *guid);
/* The messages of box. */
struct seen guids(struct fixture *f, const char *box);
/* Records of op for guid in INBOX's index; whether INBOX holds guid. */
int rec_count(struct fixture *f, const char *guid, enum store_rec_op op);
bool present(struct fixture *f, const char *guid);

/* the tests of test_repl_sync.c */
void test_reconcile_hand_added_deleted_damaged(void **state);
void test_reconcile_follows_imap_rename(void **state);
void test_reconcile_vanished_file_is_expunge(void **state);
void test_reconcile_letters_are_store(void **state);
void test_flags_letter_deltas(void **state);
void test_move_keeps_guid_until_it_comes_back(void **state);
void test_dovecot_keyword_letters_both_ways(void **state);
void test_capture_boxes_reports_folder_changes_of_others(void **state);
void test_replicated_ops_on_a_file_renamed_by_others(void **state);
void test_reconcile_leaves_record_of_file_in_tmp_alone(void **state);
void test_expunge_removes_orphaned_tmp_file(void **state);
void test_index_name_that_is_a_path_is_not_followed(void **state);
void test_index_name_with_control_byte_is_not_taken(void **state);
void test_index_over_limits_is_e2big(void **state);
void test_fetch_returns_exact_bytes_and_date(void **state);
void test_create_delete_rename_list(void **state);
void test_version1_log_still_read_and_extended(void **state);
void test_lmtp_save_records_origin_and_modseq(void **state);
/* the tests of test_repl_subs.c */
void test_subscribe_unsubscribe_idempotent(void **state);
void test_subscribe_waits_for_the_lock_then_eagain(void **state);
void test_capture_reports_subscriptions_of_others(void **state);
void test_capture_does_not_report_own_subscriptions(void **state);
void test_capture_subscriptions_damaged_files(void **state);
/* the tests of test_repl_crash.c */
void test_save_killed_after_its_record_is_finished_by_the_retry(void **state);
void test_save_killed_after_its_record_is_undone_by_expunge(void **state);
void test_save_killed_after_its_record_is_placed_by_reconcile(void **state);
void test_save_failing_after_its_record_is_lost_not_expunged(void **state);
/* the tests of test_repl_capture.c */
void test_capture_names_new_file(void **state);
void test_capture_names_removed_file(void **state);
void test_capture_names_new_to_cur_with_letters(void **state);
void test_capture_names_letter_change(void **state);
void test_capture_names_own_writes_give_nothing(void **state);
void test_capture_names_mix(void **state);
void test_capture_names_fallback_to_whole_mailbox(void **state);
void test_capture_names_move_keeps_guid_of_plain_file(void **state);
void test_capture_names_unlinked_file_is_not_searched_for(void **state);
/* the tests of test_repl_ckpt.c */
void test_ckpt_capture_reads_named_entries_and_index_since(void **state);
void test_ckpt_damaged_foreign_or_symlinked_is_not_used(void **state);
void test_ckpt_move_source_from_checkpoint(void **state);
/* the tests of test_repl_cache.c */
void test_cache_catches_up_with_lmtp_appends(void **state);
void test_cache_not_used_for_a_shorter_index(void **state);
void test_cache_not_used_for_a_rewritten_index(void **state);
void test_cache_keyed_by_uid(void **state);
void test_cache_entry_limit_evicts_and_stays_correct(void **state);
void test_cache_clear_scans_only_entries_used(void **state);

#endif
