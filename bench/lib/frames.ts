// Finds bench messages (bench/c/nlb_common.h) in what a WebSocket client
// receives: nlbridge's JSON frames (one message, or several newline-separated
// with ?batch=1), its binary frames, or websocketd relaying rr_nlk -j lines.
// The payload's place and encoding (text, hex or base64) are learnt from the first
// message and then reused, so the same client reads every system.

import { NLB_PAYLOAD_BYTES, parsePayload, parsePayloadText, type BenchPayload } from './nlmsg';

export type BenchMsg = BenchPayload;

type Encoding = 'text' | 'hex' | 'base64';
interface PayloadPlace {
  path: string[];
  encoding: Encoding;
  /** Bytes before the bench payload in the decoded field (16 when the field holds the nlmsghdr too). */
  skip: number;
}

// "NLB" starts both the message and the probe magic.
const MAGIC_BYTES = Buffer.from('NLB');
const HEX_RE = /^[0-9a-fA-F]+$/;
const B64_RE = /^[A-Za-z0-9+/_-]+=*$/;

function decodeField(s: string, encoding: Exclude<Encoding, 'text'>): Buffer {
  return encoding === 'hex' ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
}

function parseField(s: string, place: PayloadPlace): BenchMsg | null {
  if (place.encoding === 'text') return parsePayloadText(s);
  return parsePayload(decodeField(s, place.encoding).subarray(place.skip));
}

function at(obj: unknown, path: string[]): unknown {
  let v = obj;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function tryString(s: string): { encoding: Encoding; skip: number; msg: BenchMsg } | null {
  const text = parsePayloadText(s);
  if (text) return { encoding: 'text', skip: 0, msg: text };
  const encodings: Exclude<Encoding, 'text'>[] = [];
  if (s.length >= NLB_PAYLOAD_BYTES * 2 && s.length % 2 === 0 && HEX_RE.test(s)) encodings.push('hex');
  if (s.length >= 32 && B64_RE.test(s)) encodings.push('base64');
  for (const encoding of encodings) {
    const buf = decodeField(s, encoding);
    for (const skip of [0, 16]) {
      const p = parsePayload(buf.subarray(skip));
      if (p) return { encoding, skip, msg: p };
    }
  }
  return null;
}

function search(obj: unknown, path: string[]): { place: PayloadPlace; msg: BenchMsg } | null {
  if (typeof obj === 'string') {
    const r = tryString(obj);
    return r ? { place: { path, encoding: r.encoding, skip: r.skip }, msg: r.msg } : null;
  }
  if (obj !== null && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      const r = search(v, [...path, k]);
      if (r) return r;
    }
  }
  return null;
}

/** Stateful decoder: one per client process is enough (every client sees the same format). */
export class FrameDecoder {
  private place: PayloadPlace | null = null;

  /** Bench messages in one JSON object (a line of a text frame). */
  fromObject(obj: unknown, out: BenchMsg[]): void {
    if (this.place) {
      const v = at(obj, this.place.path);
      if (typeof v === 'string') {
        const p = parseField(v, this.place);
        if (p) {
          out.push(p);
          return;
        }
      }
    }
    const found = search(obj, []);
    if (found) {
      this.place = found.place;
      out.push(found.msg);
    }
  }

  /**
   * Bench messages in a text frame. The payload is ASCII, so a bridge that
   * renders it as text carries "NLB1<32 hex>" verbatim: scanning for it is
   * ten times cheaper than JSON.parse, and keeps the measuring client from
   * being what limits a run on a small machine. Frames without the marker
   * (hello and event frames, base64 or hex renderings) get the full decode.
   */
  fromText(text: string, out: BenchMsg[]): void {
    const before = out.length;
    let at = text.indexOf('NLB');
    while (at >= 0) {
      const p = parsePayloadText(text.slice(at, at + NLB_PAYLOAD_BYTES));
      if (p) {
        out.push(p);
        at = text.indexOf('NLB', at + NLB_PAYLOAD_BYTES);
      } else {
        at = text.indexOf('NLB', at + 3);
      }
    }
    if (out.length === before) this.fromJsonLines(text, out);
  }

  /** Bench messages in a text frame: one JSON value per non-empty line. */
  fromJsonLines(text: string, out: BenchMsg[]): void {
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      if (end > start) {
        let obj: unknown;
        try {
          obj = JSON.parse(text.slice(start, end));
        } catch {
          obj = undefined;
        }
        if (obj !== undefined) {
          if (Array.isArray(obj)) for (const o of obj) this.fromObject(o, out);
          else this.fromObject(obj, out);
        }
      }
      start = end + 1;
    }
  }

  /** Bench messages in a binary frame: every occurrence of the payload magic. */
  fromBinary(buf: Buffer, out: BenchMsg[]): void {
    let off = buf.indexOf(MAGIC_BYTES);
    while (off >= 0 && off + NLB_PAYLOAD_BYTES <= buf.length) {
      const p = parsePayload(buf.subarray(off, off + NLB_PAYLOAD_BYTES));
      if (p) {
        out.push(p);
        off = buf.indexOf(MAGIC_BYTES, off + NLB_PAYLOAD_BYTES);
      } else {
        off = buf.indexOf(MAGIC_BYTES, off + 1);
      }
    }
  }
}
