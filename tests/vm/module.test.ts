// The kernel module on a real kernel: tests/vm/module/run.sh builds
// dummy_netlink.ko and the tools, boots Debian's kernel under QEMU with them
// in a busybox initramfs, and runs tests/vm/module/scenario.sh (the seed's
// session, then BCAST, STATS, malformed frames, DATA-only group copies,
// once-only per sending socket, RELAYED origin, privileges, no autoload,
// parameters, log_data, the once-only table's bound, unload, 100 load/unload
// cycles). The guest reports PASS/FAIL per case and a final
// "RESULT: N passed, N failed".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runModuleHarness } from './support/module_harness';
import { skipUnless } from '../support/prerequisites';

// Every case the scenario must run; a case that disappears is a failure too.
const CASES = [
  'tools_without_module',
  'no_autoload_socket_fails',
  'no_autoload_module_absent',
  'no_autoload_modprobe_by_name',
  'seed_insmod',
  'params_visible',
  'seed_rr_gets_ticks',
  'seed_g1_acked',
  'seed_g1_kernel_accepts',
  'seed_g1_kernel_prints',
  'seed_g1_rr_does_not',
  'seed_g9_two_copies_acked',
  'seed_g9_kernel_once',
  'seed_g9_kernel_prints_once',
  'seed_g9_rr_once',
  'seed_relay_acked',
  'seed_relay_rr_gets_it_from_kernel',
  'seed_relay_counted',
  'bcast40_acked',
  'bcast40_reaches_G40',
  'bcast40_not_elsewhere',
  'bcast_multi_acked',
  'bcast_multi_group_reader_prints_once',
  'bcast_counted_per_group',
  'stats_match_sent',
  'stats_version_unit',
  'bad_short',
  'bad_overlong',
  'bad_underlen',
  'bad_unknown_type',
  'bad_reserved',
  'bad_relay_short',
  'bad_relay_dead_port',
  'bad_bcast_range',
  'bad_bcast_zero',
  'bad_bcast_count',
  'bad_too_large',
  'bad_stats_payload',
  'multi_in_one_datagram',
  'trailing_junk',
  'not_a_request_skipped',
  'unknown_type_on_r_grps_group',
  'unknown_type_on_other_group_ignored',
  'errors_counted',
  'group_relay_refused',
  'group_bcast_refused',
  'group_stats_refused',
  'group_outside_r_grps_relay_ignored',
  'group_requests_counted_not_done',
  'direct_relay_still_done',
  'direct_bcast_still_done',
  'direct_stats_still_done',
  'once_gap_acked',
  'once_gap_70_between',
  'once_gap_window_is_120_own',
  'once_3_senders_x_300',
  'once_port_reuse_new_sender',
  'once_failed_relay_retried',
  'once_retry_counted',
  'dup_seq_acked',
  'dup_seq_ignored',
  'same_seq_stats_both_answered',
  'same_seq_other_type_not_a_repeat',
  'fuzz_senders_finish',
  'fuzz_kernel_still_answers',
  'fuzz_reader_alive',
  'fuzz_reached_every_path',
  'ww_relay_dead_port',
  'ww_relay_dead_port_extack',
  'ww_direct_unknown_port',
  'ww_bad_flag',
  'rr_port_taken',
  'rr_group_out_of_range',
  'rmmod_refused_while_open',
  'rmmod_after_close',
  'ticks_multi_insmod',
  'ticks_multi_group_printed_once',
  'ticks_multi_rmmod',
  'unpriv_insmod',
  'unpriv_send_refused',
  'unpriv_group_send_refused',
  'unpriv_join_refused',
  'unpriv_rmmod',
  'allow_unpriv_insmod',
  'allow_unpriv_send',
  'relayed_origin_unforgeable',
  'relayed_creds_are_requesters',
  'allow_unpriv_join',
  'allow_unpriv_rmmod',
  'param_ngroups_small',
  'param_ngroups_large',
  'param_unit_assigned',
  'param_period_tiny',
  'param_errors_logged',
  'param_mask_over_32_bits_einval',
  'param_unit_over_32_bits_einval',
  'param_once_senders_zero',
  'log_data_insmod',
  'log_data_default_off',
  'log_data_off_silent',
  'log_data_on_at_run_time',
  'log_data_rmmod',
  'once_full_insmod',
  'once_full_refused',
  'once_full_counted',
  'once_full_slot_reused_after_2s',
  'once_full_rmmod',
  'load_unload_100',
  'dmesg_clean',
];

// Build + boot + scenario; the budget is 5 minutes.
const BUDGET_MS = 5 * 60 * 1000;

test(
  'dummy_netlink under QEMU: the seed session and every scenario case pass',
  { timeout: BUDGET_MS + 10_000, skip: skipUnless('vm-module') },
  async () => {
    const started = Date.now();
    const { code, output } = await runModuleHarness({}, BUDGET_MS);
    const elapsed = Date.now() - started;

    const result = /^RESULT: (\d+) passed, (\d+) failed$/m.exec(output);
    assert.ok(result, 'the guest printed no "RESULT: N passed, N failed" line');
    const passed = Number(result[1]);
    const failed = Number(result[2]);

    const failures = [...output.matchAll(/^FAIL: (.*)$/gm)].map((m) => m[1]);
    assert.deepEqual(failures, [], 'failed cases');
    assert.equal(failed, 0);

    const seen = new Set([...output.matchAll(/^PASS: (\S+)$/gm)].map((m) => m[1]));
    const missing = CASES.filter((c) => !seen.has(c));
    assert.deepEqual(missing, [], 'cases that did not report PASS');
    assert.ok(passed >= CASES.length, `${passed} passed, expected at least ${CASES.length}`);
    assert.equal(code, 0, 'run.sh exit status');
    assert.ok(elapsed < BUDGET_MS, `took ${elapsed} ms`);
  },
);
