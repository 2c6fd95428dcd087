// asyncapi.yaml: a valid AsyncAPI 3.0.0 document (checked with the official
// JSON Schema from @asyncapi/specs), served at /asyncapi.yaml, naming every
// frame type the daemon's code emits, and every frame a live daemon sends
// (WebSocket json, batch and binary; SSE) validates against its channel.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import type { ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { encodeMessage } from '../../addon/codec';
import { deref, loadSpec, resolveRef, type OpenApiDoc } from '../../daemon/spec';
import type { WsSubscription as Stream } from '../../daemon/streams/ws_writer';
import { ROOT, TAG, bit, call, connect, startDaemon, wwNlk, buildTools, type Daemon, type Frame } from './support/daemon_harness';
import { Sender } from './support/flood_sender';
import { SseClient } from './support/sse_client';
import { waitFor } from '../support/wait';

const G = 32;
const ASYNCAPI = path.join(ROOT, 'asyncapi.yaml');

type Doc = Record<string, unknown> & {
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
  operations: Record<string, { action: string; channel: { $ref: string }; messages: { $ref: string }[] }>;
  components: { messages: Record<string, { name: string; contentType?: string; payload: unknown }> };
};

const text = fs.readFileSync(ASYNCAPI, 'utf8');
const doc = parse(text) as Doc;
const openapi = loadSpec().doc;

function local(ref: string): unknown {
  let node: unknown = doc;
  for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown>)[part];
  if (node === undefined) throw new Error(`unresolved $ref ${ref}`);
  return node;
}

/** Inlines $refs: local ones, and ./openapi.yaml#… into openapi.yaml (whose own refs deref() inlines). */
function inline(node: unknown, depth = 0): unknown {
  if (depth > 40) throw new Error('too deep');
  if (Array.isArray(node)) return node.map((n) => inline(n, depth + 1));
  if (node === null || typeof node !== 'object') return node;
  const o = node as Record<string, unknown>;
  if (typeof o.$ref === 'string') {
    const ref = o.$ref;
    if (ref.startsWith('./openapi.yaml#'))
      return deref(openapi as OpenApiDoc, resolveRef(openapi as OpenApiDoc, ref.slice('./openapi.yaml'.length)));
    if (ref.startsWith('#/')) return inline(local(ref), depth + 1);
    throw new Error(`unexpected $ref ${ref}`);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, inline(v, depth + 1)]));
}

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const validators = new Map<string, ValidateFunction>();

/** The messages a channel's receive operations list, by name. */
function received(channel: string): Map<string, { contentType?: string; validate: ValidateFunction }> {
  const out = new Map<string, { contentType?: string; validate: ValidateFunction }>();
  for (const op of Object.values(doc.operations)) {
    if (op.action !== 'receive' || op.channel.$ref !== `#/channels/${channel}`) continue;
    for (const r of op.messages) {
      const m = inline(local(r.$ref)) as { name: string; contentType?: string; payload: unknown };
      const key = `${channel}/${m.name}`;
      let v = validators.get(key);
      if (!v) validators.set(key, (v = ajv.compile(m.payload as object)));
      out.set(m.name, { contentType: m.contentType, validate: v });
    }
  }
  return out;
}

/** Throws unless the JSON frame is a message its channel receives, and matches its payload. */
function assertFrame(channel: string, frame: Frame): void {
  const m = received(channel).get(frame.type);
  assert.ok(m, `${channel}: frame type ${frame.type} is not in asyncapi.yaml`);
  assert.ok(m.validate(frame), `${channel} ${frame.type}: ${ajv.errorsText(m.validate.errors)}\n${JSON.stringify(frame).slice(0, 400)}`);
}

test('asyncapi.yaml is a valid AsyncAPI 3.0.0 document, and the check can fail', () => {
  // The official schema bundles the draft-07 meta-schema: ajv must not preload its own.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const schema = (require('@asyncapi/specs') as { schemas: Record<string, object> }).schemas['3.0.0'];
  const v = new Ajv({ strict: false, allErrors: true, validateFormats: false, meta: false, validateSchema: false }).compile(schema);
  assert.equal(doc.asyncapi, '3.0.0');
  assert.ok(v(doc), JSON.stringify(v.errors?.slice(0, 5)));
  const broken = structuredClone(doc) as unknown as Record<string, unknown> & { info: Record<string, unknown> };
  delete broken.info.version;
  assert.equal(v(broken), false);
  // Every $ref resolves, and each channel's messages are listed by its operations.
  inline(doc);
  for (const [name, ch] of Object.entries(doc.channels)) {
    const listed = new Set(
      Object.values(doc.operations)
        .filter((o) => o.channel.$ref === `#/channels/${name}`)
        .flatMap((o) => o.messages.map((m) => m.$ref.split('/').pop())),
    );
    assert.deepEqual([...listed].sort(), Object.keys(ch.messages).sort(), name);
  }
});

test('every frame type the daemon code emits is described for its channels', () => {
  const src = (f: string): string => fs.readFileSync(path.join(ROOT, 'daemon', f), 'utf8');
  const types = (code: string, re: RegExp): string[] => [...new Set([...code.matchAll(re)].map((m) => m[1]))];
  // Every transport carries what the Subscription emits; a WebSocket also what its client's writes answer.
  const subscription = src('streams/subscription.ts');
  const ws = types(subscription + src('http/ws_ingress.ts') + src('http/streams.ts'), /(?:eventFrame|this\.event|sub\.event)\('([a-z]+)'/g);
  const sse = types(subscription, /(?:eventFrame|this\.event)\('([a-z]+)'/g);
  assert.ok(ws.length >= 7 && sse.length >= 5, `${ws} / ${sse}`);
  const wsNames = new Set([...received('groupsMask').keys()]);
  for (const t of [...ws, 'message']) assert.ok(wsNames.has(t), `WebSocket frame ${t} is not in asyncapi.yaml`);
  for (const t of [...ws, 'message']) assert.ok(received('groupsList').has(t), `list: ${t}`);
  for (const t of [...sse, 'message']) assert.ok(received('groupsEvents').has(t), `SSE event ${t} is not in asyncapi.yaml`);
  // A fleet stream carries what the Subscription emits and what fleet/watch.ts tells it; its WebSocket also answers writes with error.
  const fleet = types(src('fleet/watch.ts'), /sink\.event\('([a-z]+)'/g);
  assert.ok(fleet.includes('gap') && fleet.includes('overrun'), `${fleet}`);
  for (const t of [...sse, ...fleet, 'message'])
    assert.ok(received('fleetGroupsEvents').has(t), `fleet SSE event ${t} is not in asyncapi.yaml`);
  for (const t of [...sse, ...fleet, 'message', 'error'])
    assert.ok(received('fleetGroupsMask').has(t), `fleet WebSocket frame ${t} is not in asyncapi.yaml`);
  // Close codes used in the code are documented.
  const codes = types(src('http/streams.ts') + src('streams/ws_writer.ts'), /close\((1\d{3})/g);
  const closeDoc = (doc.channels.groupsMask as unknown as { 'x-close-codes': Record<string, string> })['x-close-codes'];
  for (const c of codes) assert.ok(closeDoc[c], `close code ${c} is not in asyncapi.yaml`);
});

describe('live frames validate against asyncapi.yaml', () => {
  let d: Daemon;
  let sender: Sender;
  before(async () => {
    buildTools();
    d = await startDaemon();
    sender = new Sender();
  });
  after(async () => {
    sender.close();
    await d.close();
  });

  test('/asyncapi.yaml serves the file without a token', async () => {
    const r = await call({ base: d.base, token: null }, 'GET', '/asyncapi.yaml');
    assert.equal(r.status, 200);
    assert.equal(r.text, text);
  });

  test('WebSocket (json, batch, binary) and SSE: hello, message, gap, dropped, overrun, malformed, sent, error', async () => {
    const json = await connect(d, `/groups/${bit(G)}?since=deadbeef-1`);
    const batch = await connect(d, `/groups?list=${G}&batch=1`);
    const binary = await connect(d, `/groups/${bit(G)}?format=binary`);
    const sse = await new SseClient().open(`${d.base}/groups/${bit(G)}/events?since=deadbeef-1`);
    const rawBatch: string[] = [];
    batch.client.ws.on('message', (data: Buffer, isBinary: boolean) => void (!isBinary && rawBatch.push(data.toString())));
    try {
      const marker = `${TAG}-async`;
      await wwNlk(['-g', String(bit(G)), '-m', marker]);
      sender.sock.send(Buffer.from([1, 2, 3]), { portId: 0, groups: bit(G) }); // malformed
      sender.sock.send(encodeMessage({ type: 16, payload: Buffer.from(`${marker}-2`) }), { portId: 0, groups: bit(G) });
      (d.bus as unknown as { onOverrun(lost: number, total: number): void }).onOverrun(3, 3); // fans out to every subscriber
      for (const s of d.app.nlbridge.streams as Set<Stream>) s.event('dropped', { count: 2 });
      json.client.send(JSON.stringify({ id: 1, groups: [G], data: 'x' }));
      json.client.send(JSON.stringify({ id: 2, pid: 0 }));
      await json.client.next((f) => f.type === 'error');
      // Every kind of frame at every client, as the checks below need it.
      const missing = (): string[] => {
        const ws = new Set(json.client.all.filter((f): f is Frame => !Buffer.isBuffer(f)).map((f) => f.type));
        const ev = new Set(sse.events.map((e) => e.event));
        return [
          ...['hello', 'gap', 'message', 'malformed', 'overrun', 'dropped', 'sent', 'error']
            .filter((t) => !ws.has(t))
            .map((t) => `WebSocket ${t}`),
          ...['hello', 'gap', 'message', 'malformed', 'overrun'].filter((t) => !ev.has(t)).map((t) => `SSE ${t}`),
          ...(binary.client.all.filter((f) => Buffer.isBuffer(f)).length >= 2 ? [] : ['2 binary frames']),
          ...(rawBatch.some((t) => t.includes('\n')) ? [] : ['a batch frame of several frames']),
        ];
      };
      await waitFor('every frame type at every client', missing, { timeoutMs: 5000, until: (m) => m.length === 0 });
      const wsFrames = json.client.all.filter((f): f is Frame => !Buffer.isBuffer(f));
      const seen = new Set(wsFrames.map((f) => f.type));
      for (const t of ['hello', 'gap', 'message', 'malformed', 'overrun', 'dropped', 'sent', 'error'])
        assert.ok(seen.has(t), `no ${t} frame seen`);
      for (const f of wsFrames) assertFrame('groupsMask', f);
      for (const f of batch.client.all) if (!Buffer.isBuffer(f)) assertFrame('groupsList', f);
      const batchMsg = received('groupsList').get('batch')!;
      assert.ok(
        rawBatch.some((t) => t.includes('\n')),
        'a batch frame held several frames',
      );
      for (const t of rawBatch) assert.ok(batchMsg.validate(t));
      const bins = binary.client.all.filter((f) => Buffer.isBuffer(f));
      assert.ok(bins.length >= 2);
      assert.equal(received('groupsMask').get('binaryMessage')?.contentType, 'application/octet-stream');
      const sseTypes = new Set(sse.events.map((e) => e.event));
      for (const t of ['hello', 'gap', 'message', 'malformed', 'overrun']) assert.ok(sseTypes.has(t), `no SSE ${t}`);
      for (const e of sse.events) assertFrame('groupsEvents', e.data as Frame);
      // The validator can fail.
      assert.throws(() => assertFrame('groupsMask', { type: 'message', n: 1 } as Frame), /required/);
      assert.throws(() => assertFrame('groupsEvents', { type: 'sent', n: 1 } as Frame), /not in asyncapi/);
    } finally {
      sse.kill();
      await json.client.close();
      await batch.client.close();
      await binary.client.close();
    }
  });
});
