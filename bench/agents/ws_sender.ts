// WebSocket ingress load: one client sends bench messages as frames, as fast
// as the connection takes them (it waits while more than 1 MiB is buffered),
// bounded in count and time. The netlink side is counted by nlb_sink.
//
// argv[2]: {"url":..., "frames":N, "maxSeconds":S, "template":"{...__PAYLOAD__...}", "encoding":"text"|"base64"|"hex"}

import WebSocket from 'ws';
import { payloadText } from '../lib/nlmsg';

interface Config {
  url: string;
  frames: number;
  maxSeconds: number;
  /** The frame text; __PAYLOAD__ is replaced by the encoded bench payload. */
  template: string;
  encoding: 'text' | 'base64' | 'hex';
  binary?: boolean;
}

const cfg = JSON.parse(process.argv[2]) as Config;
const HIGH_WATER = 1 << 20;

function out(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const [before, after] = cfg.template.split('__PAYLOAD__');

const ws = new WebSocket(cfg.url, { perMessageDeflate: false });
const replies: string[] = [];
let closeCode = 0;
let sent = 0;

ws.on('message', (data) => {
  if (replies.length < 3) replies.push(String(data).slice(0, 300));
});
ws.on('close', (code) => {
  closeCode = code;
});
ws.on('error', (err) => {
  out({ result: { sent, error: err.message, closeCode } });
  process.exit(0);
});

ws.on('open', () => {
  out({ ready: true });
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(cfg.maxSeconds * 1e9));
  const pump = (): void => {
    while (sent < cfg.frames && ws.readyState === WebSocket.OPEN) {
      if (ws.bufferedAmount > HIGH_WATER) {
        setImmediate(pump);
        return;
      }
      const now = process.hrtime.bigint();
      if (now > deadline) break;
      const text = payloadText(sent, now);
      const encoded = cfg.encoding === 'text' ? text : Buffer.from(text).toString(cfg.encoding);
      ws.send(before + encoded + after);
      sent++;
      if ((sent & 255) === 0) {
        setImmediate(pump);
        return;
      }
    }
    const wait = (): void => {
      if (ws.bufferedAmount > 0 && ws.readyState === WebSocket.OPEN) {
        setTimeout(wait, 5);
        return;
      }
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      setTimeout(() => {
        out({ result: { sent, seconds, rate: sent / seconds, closeCode, replies } });
        ws.close();
        setTimeout(() => process.exit(0), 100).unref();
      }, 200);
    };
    wait();
  };
  pump();
});
