// Case 9: the kernel module under abuse, under QEMU. tests/vm/module/run.sh
// MODE=abuse boots Debian's kernel (with slub_debug=FZP) in a busybox
// initramfs and runs tests/vm/module/abuse.sh: BURSTS loads of the module,
// each taking SENDERS × FRAMES random datagrams from concurrent senders
// (abuse_nlk.c: random lengths, types, flags with and without NLM_F_REQUEST
// and NLM_F_ACK; corrupted DATA/RELAY/BCAST/STATS payloads; broken
// nlmsg_len; to the kernel port, to r_grps groups and to other groups;
// RELAYs to dead and to full ports) while three readers sit on the groups.
// Every ack is checked against what the protocol says, and the module's
// STATS must have moved by exactly what the senders predict. Between bursts:
// rmmod with the sockets closed, ten load/unload cycles with the tick
// running. Then once-only under load (issue 14): 4 concurrent ww_nlk × 10,000
// messages, each to three r_grps groups, all with seqs 1..10,000 — accepted
// must be exactly 40,000 and ignored 80,000 — and the issue's 3 × 300 on two
// groups (900 / 900). At the end: no oops, BUG, WARNING, leak or slab poison report in
// dmesg, slabs back to where they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runModuleHarness } from '../vm/support/module_harness';
import { recordCase } from './support/report';
import { skipUnless } from '../support/prerequisites';

const BURSTS = 5;
const SENDERS = 4;
const FRAMES = 50_000; // per sender and burst: 5 × 4 × 50,000 = 1,000,000
const TOTAL = BURSTS * SENDERS * FRAMES;
// About 1 min on an idle 2-core host under TCG, 3 min when it is shared with
// other CPU-heavy tests; the guest is killed at QEMU_TIMEOUT.
const QEMU_TIMEOUT_S = 480;
const BUDGET_MS = (QEMU_TIMEOUT_S + 60) * 1000;

// Every line abuse.sh must report as PASS.
const CASES = [
  ...Array.from({ length: BURSTS }, (_, i) => [
    `burst${i + 1}_counters_consistent`,
    `burst${i + 1}_no_socket_left`,
    `burst${i + 1}_rmmod`,
  ]).flat(),
  'load_unload_cycles',
  'once_insmod',
  'once_4x10000_exact',
  'once_3x300_exact',
  'once_rmmod',
  'module_gone',
  'slab_not_grown',
  'skbs_freed',
  'dmesg_clean',
  'slub_debug_on',
];

function sum(output: string, re: RegExp): number {
  return [...output.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
}

test(
  `case 9: dummy_netlink under ${TOTAL} random frames, relays to dead ports and load/unload cycles`,
  { timeout: BUDGET_MS + 10_000, skip: skipUnless('vm-module') },
  async () => {
    const started = Date.now();
    const { code, output } = await runModuleHarness(
      { MODE: 'abuse', BURSTS: String(BURSTS), SENDERS: String(SENDERS), FRAMES: String(FRAMES), QEMU_TIMEOUT: String(QEMU_TIMEOUT_S) },
      BUDGET_MS,
    );
    const elapsed = (Date.now() - started) / 1000;

    const failures = [...output.matchAll(/^FAIL: (.*)$/gm)].map((m) => m[1]);
    const seen = new Set([...output.matchAll(/^PASS: (\S+)$/gm)].map((m) => m[1]));
    const missing = CASES.filter((c) => !seen.has(c));
    const fig =
      /^FIGURE: frames=(\d+) bursts=(\d+) senders=(\d+) cycles=(\d+) seconds=(\d+) slab_growth_kb=(-?\d+) skb_growth=(-?\d+) dmesg_lines=(\d+)$/m.exec(
        output,
      );
    const frames = fig ? Number(fig[1]) : 0;
    const replies = sum(output, /^burst \d+: seed .* (\d+) replies checked/gm);
    const mismatches = sum(output, /^burst \d+: seed .* (\d+) mismatches/gm);
    const handled = sum(output, /^burst \d+: module received=(\d+)/gm);
    const errors = sum(output, /^burst \d+: module received=\d+ accepted=\d+ ignored=\d+ errors=(\d+)/gm);
    const relayEagain = sum(output, /^burst \d+: module .* relay_eagain=(\d+)/gm);
    const rates = [...output.matchAll(/^burst \d+: seed .* \((\d+) frames\/s\)/gm)].map((m) => Number(m[1]));
    const once = [
      ...output.matchAll(
        /^ONCE: name=(\S+) senders=(\d+) messages=(\d+) copies=(\d+) accepted=(\d+) ignored=(\d+) errors=(\d+) centiseconds=(\d+)$/gm,
      ),
    ].map((m) => ({
      name: m[1]!,
      senders: Number(m[2]),
      messages: Number(m[3]),
      copies: Number(m[4]),
      accepted: Number(m[5]),
      ignored: Number(m[6]),
      errors: Number(m[7]),
      seconds: Number(m[8]) / 100,
    }));
    const load = once.find((o) => o.name === 'once_4x10000');
    const loadOk = load !== undefined && load.accepted === 40_000 && load.ignored === 80_000 && load.errors === 0;
    const pass = code === 0 && failures.length === 0 && missing.length === 0 && frames === TOTAL && mismatches === 0 && loadOk;

    const figure = fig
      ? `${frames} random frames (${BURSTS} loads × ${SENDERS} concurrent senders, 3 readers) in ${fig[5]} s guest time ` +
        `(${Math.min(...rates)}–${Math.max(...rates)} frames/s under TCG with slub_debug=FZP); ${handled} requests handled, ` +
        `${replies} acks/replies each matched to the predicted verdict, ${mismatches} mismatches; STATS deltas equal the prediction in every load ` +
        `and received = accepted + ignored + errors + relayed + BCAST done + STATS done ` +
        `(${errors} errors, ${relayEagain} RELAYs to full readers → EAGAIN); rmmod after close ${BURSTS}/${BURSTS}, ${fig[4]} load/unload cycles; ` +
        `once-only under load: ${once.map((o) => `${o.senders} senders × ${o.messages / o.senders} messages (${o.copies} copies) → accepted ${o.accepted}, ignored ${o.ignored}, errors ${o.errors} in ${o.seconds.toFixed(1)} s`).join('; ')}; ` +
        `dmesg: 0 oops/BUG/WARNING/leak/slub lines of ${fig[8]}; after vs before: SUnreclaim ${Number(fig[6]) >= 0 ? '+' : ''}${fig[6]} kB, skbuff_head_cache ${Number(fig[7]) >= 0 ? '+' : ''}${fig[7]} objects; ${elapsed.toFixed(0)} s in all` +
        (failures.length ? `; FAILED: ${failures.join('; ')}` : '')
      : `no FIGURE line from the guest (run.sh exit ${code}); failures: ${failures.join('; ') || 'none'}`;
    recordCase({ name: '9. Kernel module under abuse', figure, pass });

    assert.deepEqual(failures, [], 'failed checks in the guest');
    assert.deepEqual(missing, [], 'checks that did not report PASS');
    assert.ok(fig, 'the guest printed no FIGURE line');
    assert.equal(frames, TOTAL);
    assert.equal(mismatches, 0);
    assert.ok(load, 'the guest printed no ONCE line for 4 × 10,000');
    assert.deepEqual([load.accepted, load.ignored, load.errors], [40_000, 80_000, 0], 'once-only under load');
    assert.equal(code, 0, 'run.sh exit status');
  },
);
