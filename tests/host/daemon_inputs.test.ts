// Bad input, one row each: the right status, problem code, field, and a
// message naming the field. Every answer is checked against openapi.yaml.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, connect, startDaemon, type Daemon } from './support/daemon_harness';
import { assertMatchesSpec } from './support/daemon_spec';

interface Row {
  name: string;
  /** POST /send body (JSON-encoded) unless rawBody/method/path say otherwise. */
  body?: unknown;
  rawBody?: string;
  contentType?: string;
  method?: string;
  path?: string;
  /** Open as a WebSocket instead of plain HTTP. */
  ws?: boolean;
  status: number;
  code: string;
  field?: string;
  detail: RegExp;
}

const ROWS: Row[] = [
  {
    name: 'body is not JSON',
    rawBody: '{groups: 2',
    contentType: 'application/json',
    status: 400,
    code: 'VALIDATION',
    field: 'body',
    detail: /body is not valid JSON/,
  },
  {
    name: 'empty JSON body',
    rawBody: '',
    contentType: 'application/json',
    status: 400,
    code: 'VALIDATION',
    field: 'body',
    detail: /body is empty/,
  },
  {
    name: 'text/plain body',
    rawBody: 'hello',
    contentType: 'text/plain',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    field: 'Content-Type',
    detail: /Content-Type "text\/plain"/,
  },
  { name: 'body is an array', body: [1, 2], status: 400, code: 'VALIDATION', field: 'body', detail: /body must be object/ },
  {
    name: 'unknown field',
    body: { groups: 2, data: 'x', colour: 'red' },
    status: 400,
    code: 'VALIDATION',
    field: 'colour',
    detail: /colour is not a known field/,
  },
  {
    name: 'groups is a boolean',
    body: { groups: true },
    status: 400,
    code: 'VALIDATION',
    field: 'groups',
    detail: /groups must be integer or string or array/,
  },
  { name: 'groups negative', body: { groups: -1 }, status: 400, code: 'VALIDATION', field: 'groups', detail: /groups must be >= 0/ },
  {
    name: 'groups above 32 bits as a number',
    body: { groups: 2 ** 32 },
    status: 400,
    code: 'VALIDATION',
    field: 'groups',
    detail: /groups must be <= 4294967295/,
  },
  { name: 'groups fractional', body: { groups: 1.5 }, status: 400, code: 'VALIDATION', field: 'groups', detail: /groups must be integer/ },
  {
    name: 'groups bad hex',
    body: { groups: '0xZZ' },
    status: 400,
    code: 'VALIDATION',
    field: 'groups',
    detail: /groups must match pattern/,
  },
  {
    name: 'groups bad binary',
    body: { groups: '0b102' },
    status: 400,
    code: 'VALIDATION',
    field: 'groups',
    detail: /groups must match pattern/,
  },
  {
    name: 'groups mask text too long',
    body: { groups: '0x1' + '0'.repeat(300) },
    status: 400,
    code: 'VALIDATION',
    field: 'groups',
    detail: /groups must NOT have more than 300 characters/,
  },
  {
    name: 'groups empty list',
    body: { groups: [] },
    status: 400,
    code: 'VALIDATION',
    field: 'groups',
    detail: /groups must NOT have fewer than 1 items/,
  },
  {
    name: 'group 0 in a list',
    body: { groups: [0] },
    status: 400,
    code: 'VALIDATION',
    field: 'groups[0]',
    detail: /groups\[0\] must be >= 1/,
  },
  {
    name: 'group 1025 in a list',
    body: { groups: [2, 1025] },
    status: 400,
    code: 'VALIDATION',
    field: 'groups[1]',
    detail: /groups\[1\] must be <= 1024/,
  },
  {
    name: 'group as a string in a list',
    body: { groups: ['2'] },
    status: 400,
    code: 'VALIDATION',
    field: 'groups[0]',
    detail: /groups\[0\] must be integer/,
  },
  {
    name: 'mask 0 selects nothing',
    body: { groups: 0, data: 'x' },
    status: 400,
    code: 'BAD_GROUPS',
    field: 'groups',
    detail: /groups: the mask selects no group/,
  },
  {
    name: 'mask "0x0" selects nothing',
    body: { groups: '0x0' },
    status: 400,
    code: 'BAD_GROUPS',
    field: 'groups',
    detail: /groups: the mask selects no group/,
  },
  {
    name: 'mask text above group 1024',
    body: { groups: '0x1' + '0'.repeat(256) },
    status: 400,
    code: 'BAD_GROUPS',
    field: 'groups',
    detail: /groups: the mask names a group above 1024/,
  },
  { name: 'no destination', body: { data: 'x' }, status: 400, code: 'VALIDATION', field: 'groups', detail: /groups: name a destination/ },
  { name: 'pid negative', body: { pid: -1 }, status: 400, code: 'VALIDATION', field: 'pid', detail: /pid must be >= 0/ },
  { name: 'pid as a string', body: { pid: '5' }, status: 400, code: 'VALIDATION', field: 'pid', detail: /pid must be integer/ },
  { name: 'relay to port 0', body: { relay: 0 }, status: 400, code: 'VALIDATION', field: 'relay', detail: /relay must be >= 1/ },
  {
    name: 'relay with groups',
    body: { relay: 5, groups: 2 },
    status: 400,
    code: 'VALIDATION',
    field: 'relay',
    detail: /relay: a RELAY request goes to the kernel alone/,
  },
  { name: 'data is a number', body: { groups: 2, data: 5 }, status: 400, code: 'VALIDATION', field: 'data', detail: /data must be string/ },
  {
    name: 'unknown encoding',
    body: { groups: 2, data: 'x', encoding: 'utf16' },
    status: 400,
    code: 'VALIDATION',
    field: 'encoding',
    detail: /encoding must be one of "utf8", "base64", "hex"/,
  },
  {
    name: 'bad base64',
    body: { groups: 2, data: 'a*b=', encoding: 'base64' },
    status: 400,
    code: 'BAD_DATA',
    field: 'data',
    detail: /data is not valid base64/,
  },
  {
    name: 'odd hex',
    body: { groups: 2, data: 'abc', encoding: 'hex' },
    status: 400,
    code: 'BAD_DATA',
    field: 'data',
    detail: /data is not valid hex/,
  },
  { name: 'type below 16', body: { groups: 2, type: 2 }, status: 400, code: 'VALIDATION', field: 'type', detail: /type must be >= 16/ },
  {
    name: 'type above 16 bits',
    body: { groups: 2, type: 70000 },
    status: 400,
    code: 'VALIDATION',
    field: 'type',
    detail: /type must be <= 65535/,
  },
  {
    name: 'flags above 16 bits',
    body: { groups: 2, flags: 65536 },
    status: 400,
    code: 'VALIDATION',
    field: 'flags',
    detail: /flags must be <= 65535/,
  },
  {
    name: 'ack as a string',
    body: { groups: 2, ack: 'yes' },
    status: 400,
    code: 'VALIDATION',
    field: 'ack',
    detail: /ack must be boolean/,
  },
  {
    name: 'body over the limit',
    body: { groups: 2, data: 'x'.repeat(70 * 1024) },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    field: 'body',
    detail: /body is larger than 65536 bytes/,
  },
  {
    name: 'group above 32 on usersock',
    body: { groups: [2, 40] },
    status: 409,
    code: 'NEEDS_KERNEL',
    field: 'groups',
    detail: /groups: groups above 32 need the kernel's BCAST/,
  },
  {
    name: 'GET /send (405, Allow: POST)',
    method: 'GET',
    path: '/send',
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
    field: 'method',
    detail: /GET is not served on \/send; it serves POST/,
  },
  { name: 'unknown path', method: 'GET', path: '/nope', status: 404, code: 'NOT_FOUND', detail: /no route GET \/nope/ },
  {
    name: 'stream without an upgrade',
    method: 'GET',
    path: '/groups/10',
    status: 426,
    code: 'UPGRADE_REQUIRED',
    detail: /WebSocket endpoint/,
  },
  {
    name: 'stream mask not a number',
    ws: true,
    path: '/groups/abc',
    status: 400,
    code: 'VALIDATION',
    field: 'mask',
    detail: /params mask must match pattern/,
  },
  {
    name: 'stream mask 0',
    ws: true,
    path: '/groups/0',
    status: 400,
    code: 'BAD_GROUPS',
    field: 'mask',
    detail: /mask: the mask selects no group/,
  },
  {
    name: 'stream mask names group 40 on usersock',
    ws: true,
    path: '/groups/0x8000000000',
    status: 400,
    code: 'BAD_GROUPS',
    field: 'mask',
    detail: /mask: group 40 is above the 32 groups of protocol usersock/,
  },
  {
    name: 'stream list missing',
    ws: true,
    path: '/groups',
    status: 400,
    code: 'VALIDATION',
    field: 'list',
    detail: /querystring list is required/,
  },
  {
    name: 'stream list with a word',
    ws: true,
    path: '/groups?list=2,x',
    status: 400,
    code: 'VALIDATION',
    field: 'list',
    detail: /querystring list must match pattern/,
  },
  {
    name: 'stream list group 0',
    ws: true,
    path: '/groups?list=0',
    status: 400,
    code: 'BAD_GROUPS',
    field: 'list',
    detail: /list: group 0 is outside 1..1024/,
  },
  {
    name: 'stream unknown format',
    ws: true,
    path: '/groups/10?format=xml',
    status: 400,
    code: 'VALIDATION',
    field: 'format',
    detail: /querystring format must be one of "json", "binary"/,
  },
  {
    name: 'stream bad batch flag',
    ws: true,
    path: '/groups/10?batch=yes',
    status: 400,
    code: 'VALIDATION',
    field: 'batch',
    detail: /querystring batch must be one of/,
  },
];

describe('bad input', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.close());

  test(`the table holds at least 25 rows (${ROWS.length})`, () => {
    assert.ok(ROWS.length >= 25);
  });

  for (const row of ROWS) {
    test(row.name, async () => {
      let status: number;
      let problem: Record<string, unknown>;
      let contentType: string;
      if (row.ws) {
        const err = (await connect(d, row.path!).then(
          ({ client }) => {
            void client.close();
            return null;
          },
          (e: unknown) => e,
        )) as (Error & { status?: number; body?: string; headers?: Record<string, string> }) | null;
        assert.ok(err, 'the upgrade was refused');
        assert.ok(err.status, `refused before the upgrade: ${err.message}`);
        status = err.status;
        problem = JSON.parse(err.body!) as Record<string, unknown>;
        contentType = String(err.headers!['content-type']);
        assertMatchesSpec('GET', row.path!, status, contentType, problem);
      } else {
        const headers: Record<string, string> = {};
        if (row.contentType) headers['content-type'] = row.contentType;
        const r = await call(d, row.method ?? 'POST', row.path ?? '/send', {
          ...(row.rawBody !== undefined ? { rawBody: row.rawBody } : row.body !== undefined ? { body: row.body } : {}),
          headers,
        });
        status = r.status;
        problem = r.json as Record<string, unknown>;
        contentType = r.headers.get('content-type') ?? '';
      }
      assert.equal(status, row.status, JSON.stringify(problem));
      assert.match(contentType, /^application\/problem\+json/);
      assert.equal(problem.code, row.code);
      assert.equal(problem.status, row.status);
      if (row.field !== undefined) assert.equal(problem.field, row.field);
      assert.match(String(problem.detail), row.detail);
    });
  }
});
