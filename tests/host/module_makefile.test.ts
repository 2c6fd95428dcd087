// module/Makefile builds the module for the running kernel only, unless told
// otherwise: without /lib/modules/$(uname -r)/build it refuses, naming KDIR,
// instead of building against other headers (a module insmod would reject).
// `make tools` needs no kernel tree at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const MODULE = path.resolve(__dirname, '../../../module');

function make(args: string[]): { code: number | null; out: string } {
  const r = spawnSync('make', ['-C', MODULE, ...args], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('a kernel without its build tree: make refuses, says which tree is missing and how to name one', () => {
  for (const target of [[], ['modules'], ['check']]) {
    const r = make(['KVER=0.0.0-none', ...target]);
    assert.equal(r.code, 2, `make ${target.join(' ')}: ${r.out}`);
    assert.match(r.out, /no kernel build tree at \/lib\/modules\/0\.0\.0-none\/build/);
    assert.match(r.out, /make -C module KDIR=\/usr\/src\/linux-headers-VER/);
    assert.doesNotMatch(r.out, /Entering directory '\/usr\/src/, 'it went on to build against other headers');
  }
});

test('an explicit KDIR that is not a kernel tree is refused the same way', () => {
  const r = make(['KDIR=/nonexistent/kernel-tree', 'modules']);
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /no kernel build tree at \/nonexistent\/kernel-tree/);
});

test('make tools needs no kernel tree', () => {
  const r = make(['-n', 'KVER=0.0.0-none', 'tools']);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /no kernel build tree/);
});
