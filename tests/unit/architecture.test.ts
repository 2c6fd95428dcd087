// The shape of the code, read from its imports: no import cycle in daemon/,
// and the netlink room (daemon/netlink/) and the addon below it know nothing
// of HTTP. Type-only imports count: a cycle of types is a cycle of ideas.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repo root, from dist/tests/unit/. */
const ROOT = path.resolve(__dirname, '../../..');

const IMPORT =
  /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g;

function sources(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f))
    .sort();
}

/** What a file imports: repo-relative paths of local modules, bare names of packages. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith('.')) {
      out.push(spec);
      continue;
    }
    const base = path.join(path.dirname(file), spec);
    const found = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(path.join(ROOT, f)));
    assert.ok(found, `${file}: cannot resolve ${spec}`);
    out.push(found);
  }
  return out;
}

const graph = new Map<string, string[]>();
for (const f of [...sources('daemon'), ...sources('addon')]) graph.set(f, importsOf(f));

test('no import cycle in daemon/ or addon/', () => {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (!graph.has(g)) continue;
      if (state.get(g) === 'open') cycles.push([...stack.slice(stack.indexOf(g)), g].join(' → '));
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

/** What HTTP is: the web framework, the WebSocket library, and the daemon's rooms that speak them. */
const HTTP_SIDE = [
  /^fastify$/,
  /^@fastify\//,
  /^ws$/,
  /^daemon\/(http|routes|streams)\//,
  /^daemon\/(app|errors|frames|ws_writer|validation|spec|security|scopes|token_limits|http_server)\.ts$/,
];

test('nothing under daemon/netlink/ imports HTTP (fastify, ws, routes, the problem table)', () => {
  const netlink = [...graph.keys()].filter((f) => f.startsWith('daemon/netlink/'));
  assert.ok(netlink.length >= 5, 'the netlink room is where this test looks');
  const bad = netlink.flatMap((f) =>
    graph
      .get(f)!
      .filter((i) => HTTP_SIDE.some((re) => re.test(i)))
      .map((i) => `${f} imports ${i}`),
  );
  assert.deepEqual(bad, []);
});

test('nothing under daemon/fleet/ imports HTTP (the NATS side reaches the bus as a subscriber, as a stream does)', () => {
  const fleet = [...graph.keys()].filter((f) => f.startsWith('daemon/fleet/'));
  assert.ok(fleet.length >= 3, 'the fleet room is where this test looks');
  const bad = fleet.flatMap((f) =>
    graph
      .get(f)!
      .filter((i) => HTTP_SIDE.some((re) => re.test(i)))
      .map((i) => `${f} imports ${i}`),
  );
  assert.deepEqual(bad, []);
});

test('the addon imports nothing of the daemon', () => {
  const bad = [...graph.keys()]
    .filter((f) => f.startsWith('addon/'))
    .flatMap((f) =>
      graph
        .get(f)!
        .filter((i) => i.startsWith('daemon/'))
        .map((i) => `${f} imports ${i}`),
    );
  assert.deepEqual(bad, []);
});

test('no file in daemon/ or addon/ over 400 lines without a reason at its top (issue 16: a room that grows past its plan says why)', () => {
  const LIMIT = 400;
  const bad = [...graph.keys()].filter((f) => {
    const lines = fs.readFileSync(path.join(ROOT, f), 'utf8').split('\n');
    if (lines.length <= LIMIT) return false;
    // The reason is part of the opening comment, in these words.
    const opening = lines.slice(
      0,
      lines.findIndex((l) => !l.startsWith('//') && !l.startsWith('#!')),
    );
    return !opening.some((l) => /Over 400 lines because/.test(l));
  });
  assert.deepEqual(bad, [], `over ${LIMIT} lines with no "Over 400 lines because …" in the opening comment`);
});
