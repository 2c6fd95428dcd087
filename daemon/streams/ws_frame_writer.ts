// Server → client WebSocket frames, written in bulk.
//
// ws writes every frame as two chunks (header, payload), each a stream write
// of its own: a netlink batch of N messages became 2N chunks in writevs, and
// ws's per-frame work plus the writev was the largest cost per message in the
// bench (issue 6). Here the frames queued in one turn of the event loop are
// encoded (RFC 6455 §5.2, server frames are unmasked) into one buffer and
// written with one socket write.
//
// Only while the connection has no extension: with permessage-deflate ws
// compresses and queues frames itself, so they go through ws.send.

import type { WebSocket } from 'ws';

const OP_TEXT = 0x81; // FIN + text
const OP_BINARY = 0x82; // FIN + binary

/** A write goes out once this much is queued, even mid-turn: bufferedAmount counts only what was written. */
const WRITE_BYTES = 64 * 1024;
const WRITE_FRAMES = 256;

interface RawSocket {
  write(chunk: Buffer): boolean;
}

function headerBytes(len: number): number {
  return len < 126 ? 2 : len < 0x10000 ? 4 : 10;
}

function writeHeader(out: Buffer, at: number, opcode: number, len: number): number {
  out[at] = opcode;
  if (len < 126) {
    out[at + 1] = len;
    return at + 2;
  }
  if (len < 0x10000) {
    out[at + 1] = 126;
    out.writeUInt16BE(len, at + 2);
    return at + 4;
  }
  out[at + 1] = 127;
  out.writeUInt32BE(Math.floor(len / 0x100000000), at + 2);
  out.writeUInt32BE(len >>> 0, at + 6);
  return at + 10;
}

/**
 * A frame: a string is a text frame, a Buffer a binary one, and an array of
 * strings one text frame of those lines joined by "\n" (?batch=1), written
 * line by line instead of joined first (the join was a copy of every line).
 */
export type Frame = string | Buffer | readonly string[];

function byteLength(f: Frame): number {
  if (typeof f === 'string') return Buffer.byteLength(f, 'utf8');
  if (Buffer.isBuffer(f)) return f.length;
  let n = Math.max(0, f.length - 1);
  for (const line of f as readonly string[]) n += Buffer.byteLength(line, 'utf8');
  return n;
}

/** Encodes frames into one buffer. */
export function encodeFrames(frames: readonly Frame[], lengths: number[] = []): Buffer {
  let total = 0;
  for (let i = 0; i < frames.length; i++) {
    const len = byteLength(frames[i]);
    lengths[i] = len;
    total += headerBytes(len) + len;
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    const len = lengths[i];
    if (typeof f === 'string') {
      at = writeHeader(out, at, OP_TEXT, len);
      out.write(f, at, len, 'utf8');
      at += len;
    } else if (Buffer.isBuffer(f)) {
      at = writeHeader(out, at, OP_BINARY, len);
      f.copy(out, at);
      at += len;
    } else {
      at = writeHeader(out, at, OP_TEXT, len);
      const lines = f as readonly string[];
      for (let j = 0; j < lines.length; j++) {
        if (j > 0) out[at++] = 0x0a;
        at += out.write(lines[j], at, 'utf8');
      }
    }
  }
  return out;
}

/** Scratch for encodeFrames' byte lengths, shared: writes never interleave. */
const scratchLengths: number[] = [];

export class FrameWriter {
  private queue: Frame[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private readonly socket: RawSocket | null;

  constructor(
    private readonly ws: WebSocket,
    /** Called with the number of frames each write carried. */
    private readonly onWritten: (frames: number) => void,
  ) {
    const inner = ws as unknown as { _socket?: RawSocket; _extensions?: Record<string, unknown> };
    const plain = inner._extensions === undefined || Object.keys(inner._extensions).length === 0;
    this.socket = plain && inner._socket !== undefined ? inner._socket : null;
  }

  /** Queues a frame; it is written at the end of this turn, or earlier once enough is queued. */
  push(frame: Frame): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.socket === null) {
      const binary = Buffer.isBuffer(frame);
      this.ws.send(binary || typeof frame === 'string' ? frame : frame.join('\n'), { binary });
      this.onWritten(1);
      return;
    }
    this.queue.push(frame);
    if (typeof frame === 'string' || Buffer.isBuffer(frame)) this.queuedBytes += frame.length;
    else for (const line of frame as readonly string[]) this.queuedBytes += line.length + 1;
    if (this.queuedBytes >= WRITE_BYTES || this.queue.length >= WRITE_FRAMES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      // A microtask runs when the current callback (a netlink batch, a
      // timer, a client's message) returns: what it queued leaves in one write.
      queueMicrotask(this.flushQueued);
    }
  }

  /** Writes what is queued now (before ws writes a control frame of its own: ping, close). */
  flush(): void {
    const frames = this.queue;
    if (frames.length === 0) return;
    this.queue = [];
    this.queuedBytes = 0;
    // A closing connection takes no more data frames (ws.send refuses them too).
    if (this.ws.readyState !== this.ws.OPEN || this.socket === null) return;
    this.socket.write(encodeFrames(frames, scratchLengths));
    this.onWritten(frames.length);
  }

  private readonly flushQueued = (): void => {
    this.scheduled = false;
    this.flush();
  };
}
