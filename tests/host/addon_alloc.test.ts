// Allocation failure in the receive path is an Error with code ENOMEM, not a
// process abort. The addon is built with -fno-exceptions: a std::bad_alloc
// thrown by operator new (std::vector growth) cannot be caught and ends in
// std::terminate. To make the addon's allocations fail, and only its, a
// malloc/operator-new interposer is built here and LD_PRELOADed into a child:
// it refuses requests of NLB_FAIL_ALLOC_FROM bytes or more whose caller lies
// in nlbridge_netlink.node (found with dladdr on the return address), the
// way a process short of memory would (NULL from malloc/realloc, bad_alloc
// from operator new), and says so on stderr.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ADDON_INDEX } from './support/netlink';

const INJECTOR_CC = String.raw`
#include <dlfcn.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

extern "C" void *__libc_malloc(size_t);
extern "C" void *__libc_calloc(size_t, size_t);
extern "C" void *__libc_realloc(void *, size_t);

static size_t threshold() {
  static const size_t t = [] {
    const char *s = getenv("NLB_FAIL_ALLOC_FROM");
    return s != nullptr ? static_cast<size_t>(strtoull(s, nullptr, 10)) : 0;
  }();
  return t;
}

static bool refuse(size_t n, void *caller, const char *fn) {
  size_t t = threshold();
  if (t == 0 || n < t) return false;
  Dl_info info;
  if (dladdr(caller, &info) == 0 || info.dli_fname == nullptr) return false;
  const char *name = info.dli_fname, *suffix = "nlbridge_netlink.node";
  size_t len = strlen(name), slen = strlen(suffix);
  if (len < slen || strcmp(name + len - slen, suffix) != 0) return false;
  char line[128];
  int k = snprintf(line, sizeof line, "failalloc: refused %s(%zu) to nlbridge_netlink.node\n", fn, n);
  if (k > 0) (void)!write(2, line, static_cast<size_t>(k));
  return true;
}

extern "C" void *malloc(size_t n) {
  if (refuse(n, __builtin_return_address(0), "malloc")) { errno = ENOMEM; return nullptr; }
  return __libc_malloc(n);
}
extern "C" void *calloc(size_t a, size_t b) {
  if (b != 0 && a > static_cast<size_t>(-1) / b) { errno = ENOMEM; return nullptr; }
  if (refuse(a * b, __builtin_return_address(0), "calloc")) { errno = ENOMEM; return nullptr; }
  return __libc_calloc(a, b);
}
extern "C" void *realloc(void *p, size_t n) {
  if (refuse(n, __builtin_return_address(0), "realloc")) { errno = ENOMEM; return nullptr; }
  return __libc_realloc(p, n);
}
void *operator new(size_t n) {
  if (refuse(n, __builtin_return_address(0), "operator new")) throw std::bad_alloc();
  void *p = __libc_malloc(n != 0 ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void *operator new[](size_t n) {
  if (refuse(n, __builtin_return_address(0), "operator new[]")) throw std::bad_alloc();
  void *p = __libc_malloc(n != 0 ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
`;

let injector = '';
let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-failalloc-'));
  fs.writeFileSync(path.join(dir, 'failalloc.cc'), INJECTOR_CC);
  injector = path.join(dir, 'failalloc.so');
  execFileSync('g++', ['-O1', '-fPIC', '-shared', '-Wall', '-Wextra', '-Werror', '-o', injector, path.join(dir, 'failalloc.cc'), '-ldl']);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChild(src: string, failFrom: number): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['-e', src], {
      env: { ...process.env, ADDON_INDEX, LD_PRELOAD: injector, NLB_FAIL_ALLOC_FROM: String(failFrom) },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const N = 1500;
const PAYLOAD = 2000;

test('a receive batch whose buffer cannot grow: Error ENOMEM (errno, syscall), every datagram still delivered in order, no abort', async (t) => {
  // 1500 datagrams of 2 kB queued before reading: one wake-up would gather
  // 3 MB; the addon may allocate at most 1 MiB at a time.
  const r = await runChild(
    `
    const { NetlinkSocket } = require(process.env.ADDON_INDEX);
    const N = ${N}, PAYLOAD = ${PAYLOAD};
    const reader = NetlinkSocket.open({ protocol: 2, maxDatagramBytes: 2048, receiveBufferBytes: 32 << 20 });
    const writer = NetlinkSocket.open({ protocol: 2 });
    for (let i = 0; i < N; i++) {
      const m = Buffer.alloc(PAYLOAD);
      m.writeUInt32LE(PAYLOAD, 0);
      m.writeUInt32LE(i, 8);
      writer.send(m, { portId: reader.portId });
    }
    const out = { got: 0, lost: 0, inOrder: true, errors: [], batches: 0 };
    const finish = () => { reader.close(); writer.close(); process.stdout.write(JSON.stringify(out)); };
    const timer = setTimeout(finish, 10000);
    reader.on('overrun', (e) => { out.lost += e.lost; });
    reader.on('error', (e) => { out.errors.push({ name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }); });
    reader.on('datagrams', (batch) => {
      out.batches++;
      for (const d of batch) {
        if (d.length !== PAYLOAD || d.data.readUInt32LE(8) !== out.got) out.inOrder = false;
        out.got++;
      }
      if (out.got + out.lost >= N) { clearTimeout(timer); finish(); }
    });
  `,
    1 << 20,
  );
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr.slice(-2000)}`);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  // The injector really refused the addon something.
  assert.match(r.stderr, /failalloc: refused realloc\(\d+\) to nlbridge_netlink\.node/);
  const out = JSON.parse(r.stdout) as {
    got: number;
    lost: number;
    inOrder: boolean;
    batches: number;
    errors: Array<{ name: string; code: string; errno: number; syscall: string; message: string }>;
  };
  t.diagnostic(
    `${out.got} datagrams in ${out.batches} batches, ${out.errors.length} ENOMEM errors, ${(r.stderr.match(/failalloc: refused/g) ?? []).length} allocations refused`,
  );
  assert.equal(out.got, N, JSON.stringify(out).slice(0, 2000));
  assert.equal(out.lost, 0);
  assert.equal(out.inOrder, true);
  assert.ok(out.errors.length >= 1, 'no ENOMEM error reported');
  for (const e of out.errors) {
    assert.equal(e.name, 'NetlinkError');
    assert.equal(e.code, 'ENOMEM');
    assert.equal(e.errno, -os.constants.errno.ENOMEM);
    assert.equal(e.syscall, 'realloc');
    assert.match(e.message, /receive batch/);
  }
  assert.ok(out.batches > out.errors.length, `batches ${out.batches}, errors ${out.errors.length}`);
});

test("the receive slots' headers cannot be allocated: starting to receive throws ENOMEM (calloc), the socket stays usable", async () => {
  // maxDatagramBytes 16: 64 slots of 16 bytes (1 KiB, allowed), 64 mmsghdr
  // (4 KiB, refused: the injector allows less than 2 KiB).
  const r = await runChild(
    `
    const { NetlinkSocket } = require(process.env.ADDON_INDEX);
    const s = NetlinkSocket.open({ protocol: 2, maxDatagramBytes: 16 });
    const out = {};
    try { s.on('datagrams', () => {}); out.started = true; } catch (e) { out.err = { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall }; }
    out.send = s.send(Buffer.alloc(16), { portId: s.portId }).unicast;
    s.close();
    process.stdout.write(JSON.stringify(out));
  `,
    2048,
  );
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr.slice(-2000)}`);
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const out = JSON.parse(r.stdout) as {
    started?: boolean;
    err?: { name: string; code: string; errno: number; syscall: string };
    send: string;
  };
  assert.match(r.stderr, /failalloc: refused calloc\(\d+\) to nlbridge_netlink\.node/);
  assert.deepEqual(out.err, { name: 'NetlinkError', code: 'ENOMEM', errno: -os.constants.errno.ENOMEM, syscall: 'calloc' });
  assert.equal(out.send, 'delivered');
});
