// WebSocket frames. A received message is encoded once per arrival (not once
// per client): `messageTail` is the JSON after the per-stream counter, and
// each client prefixes its own `n`.

import { isUtf8 } from 'node:buffer';
import { flagNames } from '../addon/codec';
import { DnlMsgType, decodeRelayed, decodeTick, dnlTypeName } from '../addon/dummy_netlink';
import type { RxMessage } from './netlink/message';

const CONTROL_NAMES: Record<number, string> = { 1: 'NOOP', 2: 'ERROR', 3: 'DONE', 4: 'OVERRUN' };

export function typeName(type: number, dummy: boolean): string | null {
  if (CONTROL_NAMES[type]) return CONTROL_NAMES[type];
  return dummy ? dnlTypeName(type) : null;
}

// Every message of a netlink batch shares one receive time and most share
// their flags: formatting them once instead of per message took messageTail
// from 1.27 to 0.8 µs per message (bench/, issue 6).
const flagLists = new Map<number, string[]>();
function flagList(flags: number): string[] {
  let names = flagLists.get(flags);
  if (names === undefined) {
    names = flagNames(flags);
    if (flagLists.size < 256) flagLists.set(flags, names);
  }
  return names;
}

let isoAt = NaN;
let isoText = '';
function isoTime(ms: number): string {
  if (ms !== isoAt) {
    isoText = new Date(ms).toISOString();
    isoAt = ms;
  }
  return isoText;
}

const flagJsons = new Map<number, string>();
function flagJson(flags: number): string {
  let text = flagJsons.get(flags);
  if (text === undefined) {
    text = JSON.stringify(flagList(flags));
    if (flagJsons.size < 256) flagJsons.set(flags, text);
  }
  return text;
}

// The bus hands one message to every subscriber in turn, so the text made
// for the first is the text of the next ones: remembering the last message
// makes it once per message, with no field on the bus's object. (Measured
// against the alternatives, CPU per message on the receive path: a WeakMap
// cost 3.7 µs more, its ephemerons slowing every scavenge; a key by cursor
// 0.15-0.3 µs more, comparing strings.) What it holds until the next message
// is one message, whose payload views its receive batch (at most 8 MiB, the
// addon's bound per wake-up).
let lastMessage: RxMessage | null = null;
let lastDummy = false;
let lastTail = '';

/** JSON of a message after `{"type":"message","n":N,` — computed once per message. */
export function messageTail(m: RxMessage, dummy: boolean): string {
  if (m === lastMessage && dummy === lastDummy) return lastTail;
  lastTail = encodeTail(m, dummy);
  lastMessage = m;
  lastDummy = dummy;
  return lastTail;
}

function encodeTail(m: RxMessage, dummy: boolean): string {
  // A fleet message (from NATS) is a local message frame plus its host, first.
  if (m.host !== undefined) return `"host":${JSON.stringify(m.host)},${encodeLocalTail(m, dummy)}`;
  return encodeLocalTail(m, dummy);
}

function encodeLocalTail(m: RxMessage, dummy: boolean): string {
  const name = typeName(m.header.type, dummy);
  // The common message (no tick, not truncated, not ours) as one template,
  // the same text the object below gives: 0.8 → 0.35 µs per message. The
  // uid is in it: the shared socket asks for credentials, so every message
  // has one.
  // TICK and RELAYED carry a header the module writes: decoded below.
  if (!(dummy && (m.header.type === DnlMsgType.TICK || m.header.type === DnlMsgType.RELAYED)) && !m.truncated && !m.fromBridge) {
    const utf8 = isUtf8(m.payload);
    const data = utf8 ? JSON.stringify(m.payload.toString('utf8')) : `"${m.payload.toString('base64')}"`;
    const h = m.header;
    return (
      (m.cursor === undefined ? '' : `"cursor":"${m.cursor}",`) +
      `"group":${m.group},"portId":${m.portId},"nlmsgPid":${h.pid},"seq":${h.seq},"msgType":${name === null ? h.type : JSON.stringify(name)},` +
      `"typeNumber":${h.type},"flags":${flagJson(h.flags)}${m.uid === undefined ? '' : `,"uid":${m.uid}`},"encoding":"${utf8 ? 'utf8' : 'base64'}","data":${data},` +
      `"length":${m.payload.length},"receivedAt":"${isoTime(m.receivedAt)}"}`
    );
  }
  const o: Record<string, unknown> = {};
  if (m.cursor !== undefined) o.cursor = m.cursor;
  o.group = m.group;
  o.portId = m.portId;
  o.nlmsgPid = m.header.pid;
  o.seq = m.header.seq;
  o.msgType = name ?? m.header.type;
  o.typeNumber = m.header.type;
  o.flags = flagList(m.header.flags);
  if (m.uid !== undefined) o.uid = m.uid;
  if (dummy && m.header.type === DnlMsgType.TICK) {
    try {
      const t = decodeTick(m.payload);
      o.tick = {
        counter: Number(t.counter),
        timeNs: t.timeNs.toString(),
        time: new Date(Number(t.timeNs / 1000000n)).toISOString(),
        group: t.group,
        periodMs: t.periodMs,
      };
    } catch {
      o.tickError = 'payload shorter than struct dnl_tick';
    }
  }
  let data = m.payload;
  if (dummy && m.header.type === DnlMsgType.RELAYED) {
    // Only the kernel (port 0) writes a trustworthy origin; anyone else's
    // RELAYED-typed message is shown as it came.
    try {
      const r = decodeRelayed(m.header.type, m.portId, m.payload);
      if (r !== null) {
        o.relayedFrom = r.relayedFrom;
        data = r.data;
      }
    } catch {
      o.relayedError = 'payload shorter than struct dnl_relayed';
    }
  }
  if (isUtf8(data)) {
    o.encoding = 'utf8';
    o.data = data.toString('utf8');
  } else {
    o.encoding = 'base64';
    o.data = data.toString('base64');
  }
  o.length = data.length;
  if (m.truncated) o.truncated = true;
  if (m.fromBridge) o.fromBridge = true;
  o.receivedAt = isoTime(m.receivedAt);
  return JSON.stringify(o).slice(1);
}

export function messageFrame(n: number, tail: string): string {
  return `{"type":"message","n":${n},${tail}`;
}

/** Any non-message frame: hello, dropped, overrun, sent, error, malformed. */
export function eventFrame(type: string, n: number, fields: Record<string, unknown>): string {
  return JSON.stringify({ type, n, ...fields });
}
