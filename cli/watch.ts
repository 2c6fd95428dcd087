// nlbridge watch: a WebSocket stream of groups, one line per message, that
// survives a dropped connection. It keeps the cursor of the last message it
// printed and reconnects with ?since=CURSOR (daemon/README.md, "Resume"): the
// daemon then sends what arrived meanwhile, or a gap frame saying how much it
// no longer holds. Either way the watch says so, on stderr, so stdout stays
// one line per message.

import WebSocket from 'ws';
import type { DaemonClient } from './daemon_client';
import { CliError, EXIT } from './exit_status';
import { payload } from './format';
import { parseGroupList, parseMask, parseNumber } from './groups';
import { clientFor, parse } from './options';
import { helpText } from './usage';

interface Frame {
  type: string;
  n: number;
  [k: string]: unknown;
}

/** Reconnect delays: quick for a blip, at most a few seconds while the daemon restarts. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5000;
/** A connection that answers no ping within this time is taken as dead (a silent network). */
const HEARTBEAT_MS = 15_000;
/** Close codes after which reconnecting cannot help: the daemon refuses this stream as asked. */
const FINAL_CLOSE = new Set([1002, 1003, 1007, 1008, 1009, 1010]);

function note(text: string): void {
  process.stderr.write(`nlbridge watch: ${text}\n`);
}

function describeGap(f: Frame): string {
  const lost = f.lost === null ? 'an unknown number of messages were' : `${String(f.lost)} message${f.lost === 1 ? ' was' : 's were'}`;
  const why =
    f.reason === 'epoch'
      ? 'the cursor is from another run of the daemon (it restarted), whose messages are gone'
      : "they fell out of the daemon's ring before the resume";
  return `${lost} lost after ${String(f.since)}: ${why}; going on from ${String(f.resumeFrom ?? 'the live stream')}`;
}

/** One message frame as a line: time, group, port, payload. */
export function messageLine(f: Frame, forceHex: boolean): string {
  const group = f.group === 0 ? 'unicast' : `group ${String(f.group)}`;
  return `${String(f.receivedAt)}  ${group}  port ${String(f.portId)}  ${payload(String(f.data), String(f.encoding), forceHex)}${f.truncated ? ' (truncated)' : ''}`;
}

interface WatchPlan {
  /** /groups/10 or /groups?list=2,40, without ?since. */
  path: string;
  hex: boolean;
  json: boolean;
  count: number | null;
  cursor: string | null;
}

/** Why one connection ended. */
type Ended = { kind: 'done' } | { kind: 'refused'; error: CliError } | { kind: 'lost'; why: string; everOpen: boolean };

class Watch {
  private printed = 0;
  private helloSeen = false;
  /** Set while the first frame after hello is still to say whether a resume lost anything. */
  private resuming: boolean;
  private stopping = false;
  private ws: WebSocket | null = null;

  constructor(
    private readonly client: DaemonClient,
    private readonly plan: WatchPlan,
  ) {
    this.resuming = plan.cursor !== null;
  }

  stop(): void {
    this.stopping = true;
    this.ws?.close(1000);
  }

  private url(): string {
    const since =
      this.plan.cursor === null ? '' : `${this.plan.path.includes('?') ? '&' : '?'}since=${encodeURIComponent(this.plan.cursor)}`;
    return this.client.streamUrl(this.plan.path + since);
  }

  /** What one frame does to the output and to the cursor; true when --count is reached. */
  private onFrame(line: string, f: Frame): boolean {
    if (this.plan.json) process.stdout.write(line + '\n');
    if (f.type === 'hello') {
      if (!this.helloSeen)
        note(
          `watching group${(f.groups as number[]).length === 1 ? '' : 's'} ${(f.groups as number[]).join(', ')} at ${this.client.endpoint.shown}`,
        );
      this.helloSeen = true;
      return false;
    }
    if (this.resuming) {
      // The daemon writes a gap, if there is one, as the first frame after hello.
      this.resuming = false;
      if (f.type !== 'gap') note(`resumed after ${String(this.plan.cursor)}: nothing lost`);
    }
    switch (f.type) {
      case 'message':
        if (typeof f.cursor === 'string') this.plan.cursor = f.cursor;
        if (!this.plan.json) process.stdout.write(messageLine(f, this.plan.hex) + '\n');
        this.printed++;
        return this.plan.count !== null && this.printed >= this.plan.count;
      case 'gap':
        note(describeGap(f));
        return false;
      case 'dropped':
        note(`the daemon dropped ${String(f.count)} message${f.count === 1 ? '' : 's'} for this stream (it was reading too slowly)`);
        return false;
      case 'overrun':
        note(`the daemon's netlink socket overran: ${String(f.lost)} message${f.lost === 1 ? '' : 's'} lost before it could read them`);
        return false;
      case 'malformed':
        note(`a malformed datagram from port ${String(f.portId)} on group ${String(f.group)}: ${String(f.reason)}`);
        return false;
      case 'error':
        note(`the daemon says: ${JSON.stringify(f.problem)}`);
        return false;
      default:
        return false;
    }
  }

  /** One connection, until it ends. */
  private connectOnce(): Promise<Ended> {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url(), this.client.streamOptions());
      this.ws = ws;
      let open = false;
      let refused: CliError | null = null;
      let alive = true;
      const heartbeat = setInterval(() => {
        if (ws.readyState !== WebSocket.OPEN) return;
        if (!alive) return ws.terminate();
        alive = false;
        ws.ping();
      }, HEARTBEAT_MS);
      ws.on('pong', () => (alive = true));
      ws.on('unexpected-response', (req, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => {
          try {
            refused = this.client.refusal(JSON.parse(text));
          } catch {
            refused = new CliError(`${this.client.endpoint.shown} refused the stream with HTTP ${res.statusCode}`, EXIT.refused);
          }
          req.destroy();
          ws.terminate();
        });
      });
      ws.on('open', () => (open = true));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        // Frames already received when --count was reached, or Ctrl-C, are not printed.
        if (isBinary || this.stopping) return;
        // With ?batch=1 a frame holds several lines; we never ask for it, but read it right anyway.
        for (const line of data.toString('utf8').split('\n')) {
          if (line === '') continue;
          if (this.onFrame(line, JSON.parse(line) as Frame)) {
            this.stopping = true;
            ws.close(1000);
            return;
          }
        }
      });
      let lastError = '';
      ws.on('error', (err: NodeJS.ErrnoException) => (lastError = err.code ?? err.message));
      ws.on('close', (code, reason) => {
        clearInterval(heartbeat);
        this.ws = null;
        if (this.stopping) return resolve({ kind: 'done' });
        if (refused) return resolve({ kind: 'refused', error: refused });
        if (FINAL_CLOSE.has(code))
          return resolve({
            kind: 'refused',
            error: new CliError(`the daemon closed the stream with ${code}: ${reason.toString()}`, EXIT.refused),
          });
        const why = open ? `closed with ${code}${reason.length ? ` (${reason.toString()})` : ''}` : lastError || `closed with ${code}`;
        resolve({ kind: 'lost', why, everOpen: open });
      });
    });
  }

  async run(): Promise<number> {
    let delay = RETRY_FIRST_MS;
    let connectedOnce = false;
    for (;;) {
      const ended = await this.connectOnce();
      if (ended.kind === 'done') return EXIT.ok;
      if (ended.kind === 'refused') throw ended.error;
      if (!connectedOnce && !ended.everOpen) {
        throw this.client.unreachable(Object.assign(new Error(ended.why), { code: ended.why }));
      }
      if (ended.everOpen) {
        connectedOnce = true;
        delay = RETRY_FIRST_MS;
        note(
          `connection lost (${ended.why}); reconnecting${this.plan.cursor ? ` to resume after ${this.plan.cursor}` : ' (no message had arrived, so nothing to resume from: what arrives meanwhile is not known)'}`,
        );
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
      if (this.stopping) return EXIT.ok;
      this.resuming = this.plan.cursor !== null;
    }
  }
}

export async function watch(argv: string[]): Promise<number> {
  const { values, positionals } = parse('watch', argv, {
    list: { type: 'string', short: 'l' },
    hex: { type: 'boolean' },
    since: { type: 'string' },
    count: { type: 'string', short: 'n' },
  });
  if (values.help) {
    process.stdout.write(helpText('watch'));
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new CliError(`one MASK at most, got ${positionals.join(' ')}`, EXIT.usage);
  if ((positionals.length === 1) === (values.list !== undefined))
    throw new CliError('give the groups: a MASK (watch 10) or -l LIST (watch -l 2,40)', EXIT.usage);
  const path =
    values.list !== undefined
      ? `/groups?list=${parseGroupList(values.list, '-l').join(',')}`
      : `/groups/${parseMask(positionals[0], 'MASK')}`;
  if (values.since !== undefined && !/^[0-9a-z]{1,32}-[0-9]{1,15}$/.test(values.since))
    throw new CliError(`--since: "${values.since}" is not a cursor (EPOCH-SEQ)`, EXIT.usage);
  const count = values.count === undefined ? null : parseNumber(values.count, '-n', 1, Number.MAX_SAFE_INTEGER);
  const w = new Watch(clientFor(values), {
    path,
    hex: values.hex === true,
    json: values.json === true,
    count,
    cursor: values.since ?? null,
  });
  const stop = (): void => w.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return w.run();
}
