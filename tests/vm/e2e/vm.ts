// The end-to-end test's VM: builds the image (image.sh), boots it under QEMU
// with two forwarded ports (the daemon, through the guest's port proxy, and
// the guest agent), and gives the test clients for both.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';

export const ROOT = path.resolve(__dirname, '../../../..');
const HERE = path.join(ROOT, 'tests', 'vm', 'e2e');

export interface ShellResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut?: boolean;
}

export interface HttpResult {
  status: number;
  body: string;
  json: unknown;
}

function log(msg: string): void {
  process.stderr.write(`e2e: ${msg}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Runs image.sh (with @args: --for-deb); resolves with the kernel version and the image path. */
export function buildImage(args: string[] = []): Promise<{ kver: string; img: string; seconds: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(HERE, 'image.sh'), args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const kver = /^KVER=(.+)$/m.exec(out)?.[1];
      const img = /^IMG=(.+)$/m.exec(out)?.[1];
      if (code !== 0 || !kver || !img) reject(new Error(`image.sh failed (exit ${code})`));
      else resolve({ kver, img, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

export class Vm {
  private qemu: ChildProcess | null = null;
  private exited: Promise<number | null> = Promise.resolve(null);
  apiPort = 0;
  agentPort = 0;
  token = '';
  readonly consoleLog: string;

  /**
   * @extraDrives: raw disk images given to the guest read-only after its root,
   * as /dev/vdb, /dev/vdc… (the e2e test's local apt repository).
   * @rebootable: a guest reboot resets the machine instead of ending QEMU, so
   * reboot() keeps what the guest wrote to its -snapshot overlay (which goes
   * with the QEMU process). A guest that panics then boots again, and boot()'s
   * or reboot()'s time limit catches it.
   */
  constructor(
    readonly kver: string,
    readonly img: string,
    readonly accel = process.env.NLB_VM_ACCEL ?? 'tcg',
    readonly extraDrives: readonly string[] = [],
    readonly rebootable = false,
  ) {
    this.consoleLog = path.join(path.dirname(img), 'console.log');
  }

  /** Boot attempts the last boot() needed (1 unless a boot hung). */
  bootAttempts = 0;

  /**
   * Boots and waits until the guest agent answers; returns the seconds the
   * successful attempt took. A guest that does not answer within
   * @attemptTimeoutMs (about 10× a normal TCG boot) is killed and booted
   * afresh, up to @attempts times: one CI run saw a boot never reach the agent
   * while the same image booted in 18 s in the test file before it. Every
   * failed attempt is reported on stderr with the tail of its serial console,
   * which is kept as console.attempt-N.log next to console.log.
   */
  async boot(attemptTimeoutMs = 180_000, attempts = 2): Promise<number> {
    let failure = '';
    for (this.bootAttempts = 1; this.bootAttempts <= attempts; this.bootAttempts++) {
      const t0 = Date.now();
      const outcome = await this.bootOnce(attemptTimeoutMs);
      const seconds = (Date.now() - t0) / 1000;
      if (outcome === 'up') {
        log(`guest agent answers after ${seconds.toFixed(1)} s (boot attempt ${this.bootAttempts})`);
        return seconds;
      }
      failure =
        outcome === 'exited'
          ? `qemu exited during boot after ${seconds.toFixed(0)} s`
          : `the guest agent did not answer within ${attemptTimeoutMs / 1000} s`;
      await this.kill();
      const kept = this.consoleLog.replace(/\.log$/, `.attempt-${this.bootAttempts}.log`);
      if (fs.existsSync(this.consoleLog)) fs.copyFileSync(this.consoleLog, kept);
      const tail = readConsole(this).split('\n').slice(-40).join('\n');
      process.stderr.write(
        `e2e: boot attempt ${this.bootAttempts} of ${attempts}: ${failure}; qemu killed; its console (${kept}) ends:\n${tail}\n`,
      );
    }
    this.bootAttempts = attempts;
    throw new Error(
      `${failure}, in each of ${attempts} boot attempts (consoles: ${path.dirname(this.consoleLog)}/console.attempt-N.log, tails on stderr)`,
    );
  }

  private async bootOnce(timeoutMs: number): Promise<'up' | 'exited' | 'timeout'> {
    const t0 = Date.now();
    this.apiPort = await freePort();
    this.agentPort = await freePort();
    const args = [
      '-accel',
      this.accel,
      '-m',
      '1024',
      '-smp',
      '2',
      '-nographic',
      ...(this.rebootable ? [] : ['-no-reboot']),
      '-nodefaults',
      '-serial',
      `file:${this.consoleLog}`,
      '-kernel',
      `/boot/vmlinuz-${this.kver}`,
      '-initrd',
      `/boot/initrd.img-${this.kver}`,
      '-append',
      'root=/dev/vda rw console=ttyS0 panic=-1',
      // -snapshot: the guest's writes go to a temporary overlay, so the cached
      // image (image.sh) is booted unchanged by every test that uses it.
      '-snapshot',
      '-drive',
      `file=${this.img},if=virtio,format=raw`,
      ...this.extraDrives.flatMap((d) => ['-drive', `file=${d},if=virtio,format=raw,readonly=on`]),
      '-nic',
      `user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${this.apiPort}-:8081,hostfwd=tcp:127.0.0.1:${this.agentPort}-:7000`,
    ];
    log(`qemu-system-x86_64 ${args.join(' ')}`);
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'inherit', 'inherit'] });
    this.qemu = qemu;
    // Never leave a guest running behind a crashed or interrupted test run.
    const killOnExit = (): void => void qemu.kill('SIGKILL');
    process.once('exit', killOnExit);
    qemu.once('exit', () => process.off('exit', killOnExit));
    this.exited = new Promise((resolve) => qemu.on('exit', (code) => resolve(code)));
    let exitedEarly = false;
    void this.exited.then(() => (exitedEarly = true));
    while (Date.now() - t0 < timeoutMs) {
      if (exitedEarly) return 'exited';
      try {
        const r = await this.sh('true', 5000);
        if (r.code === 0) return 'up';
      } catch {
        /* not up yet */
      }
      await sleep(1000);
    }
    return 'timeout';
  }

  /**
   * Reboots the guest in the same QEMU (needs @rebootable) and waits until the
   * agent answers from the new boot; returns the seconds that took.
   */
  async reboot(timeoutMs = 240_000): Promise<number> {
    if (!this.rebootable) throw new Error('Vm.reboot: this VM ends at a guest reboot (rebootable = false)');
    const bootId = (await this.ok('cat /proc/sys/kernel/random/boot_id')).trim();
    const t0 = Date.now();
    await this.agent({ spawn: 'sleep 0.2; systemctl reboot', id: 'reboot' }, 5000);
    while (Date.now() - t0 < timeoutMs) {
      try {
        const r = await this.sh('cat /proc/sys/kernel/random/boot_id', 5000);
        if (r.code === 0 && r.stdout.trim() !== bootId) {
          const seconds = (Date.now() - t0) / 1000;
          log(`guest agent answers ${seconds.toFixed(1)} s after the reboot`);
          return seconds;
        }
      } catch {
        /* going down, or not up yet */
      }
      await sleep(1000);
    }
    const tail = readConsole(this).split('\n').slice(-40).join('\n');
    throw new Error(`the guest agent did not answer within ${timeoutMs / 1000} s of a reboot; the console ends:\n${tail}`);
  }

  /** Ends the guest at once (a hung boot: there is no agent to ask). */
  private async kill(): Promise<void> {
    const qemu = this.qemu;
    this.qemu = null;
    if (!qemu) return;
    qemu.kill('SIGKILL');
    await this.exited;
  }

  async shutdown(): Promise<void> {
    if (!this.qemu) return;
    const qemu = this.qemu;
    this.qemu = null;
    try {
      await this.agent({ spawn: 'sleep 0.2; systemctl poweroff', id: 'poweroff' }, 5000);
    } catch {
      /* already gone */
    }
    const t = setTimeout(() => qemu.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(t);
  }

  /** One request to the guest agent (tests/vm/e2e/guest/agent.js). */
  agent(req: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(this.agentPort, '127.0.0.1');
      let buf = '';
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`guest agent: no answer within ${timeoutMs} ms to ${JSON.stringify(req)}`));
      }, timeoutMs);
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
      sock.on('data', (d: string) => (buf += d));
      sock.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      sock.on('close', () => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(buf) as Record<string, unknown>);
        } catch {
          reject(new Error(`guest agent: bad answer ${JSON.stringify(buf)}`));
        }
      });
    });
  }

  /** Runs a bash command in the guest as root. */
  async sh(cmd: string, timeoutMs = 30_000): Promise<ShellResult> {
    const r = await this.agent({ cmd, timeoutMs }, timeoutMs + 5000);
    if (typeof r.error === 'string') throw new Error(`guest agent: ${r.error}`);
    return r as unknown as ShellResult;
  }

  /** Runs a command that must succeed; returns its stdout. */
  async ok(cmd: string, timeoutMs = 30_000): Promise<string> {
    const r = await this.sh(cmd, timeoutMs);
    if (r.code !== 0) throw new Error(`guest: \`${cmd}\` exited ${r.code ?? r.signal}: ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  async spawnJob(id: string, cmd: string): Promise<void> {
    await this.agent({ spawn: cmd, id }, 10_000);
  }

  async jobOutput(id: string): Promise<{ stdout: string; stderr: string; code: number | string | null }> {
    return (await this.agent({ output: id }, 10_000)) as { stdout: string; stderr: string; code: number | string | null };
  }

  async killJob(id: string): Promise<void> {
    await this.agent({ kill: id, signal: 'SIGTERM' }, 10_000);
  }

  /** systemctl show PROPERTY values of a unit. */
  async unitProps(unit: string, props: string[]): Promise<Record<string, string>> {
    const out = await this.ok(`systemctl show ${unit} ${props.map((p) => `-p ${p}`).join(' ')}`);
    const o: Record<string, string> = {};
    for (const line of out.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) o[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return o;
  }

  /** Waits until the unit is active (started and, for Type=notify, ready). */
  async waitActive(unit: string, timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const p = await this.unitProps(unit, ['ActiveState']);
      if (p.ActiveState === 'active') return Date.now() - t0;
      if (Date.now() - t0 > timeoutMs) throw new Error(`${unit} is ${p.ActiveState} after ${timeoutMs} ms`);
      await sleep(250);
    }
  }

  /** An HTTP request to the daemon through the forwarded port, as a local client. */
  http(method: string, urlPath: string, body?: unknown, opts: { token?: string | null; host?: string } = {}): Promise<HttpResult> {
    const token = opts.token === undefined ? this.token : opts.token;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { host: opts.host ?? '127.0.0.1:8080' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.apiPort, method, path: urlPath, headers, timeout: 20_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: text, json });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timeout`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A WebSocket client of the daemon; frames are collected as parsed JSON. */
  async ws(urlPath: string, token: string | null = this.token): Promise<WsClient> {
    const headers: Record<string, string> = { host: '127.0.0.1:8080' };
    if (token) headers.authorization = `Bearer ${token}`;
    const ws = new WebSocket(`ws://127.0.0.1:${this.apiPort}${urlPath}`, { headers });
    const client = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket ${urlPath}: HTTP ${res.statusCode}`)));
    });
    return client;
  }
}

export class WsClient {
  readonly frames: Array<Record<string, unknown>> = [];
  closeCode: number | null = null;
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: WebSocket.RawData) => {
      try {
        this.frames.push(JSON.parse(data.toString()) as Record<string, unknown>);
      } catch {
        this.frames.push({ raw: data.toString() });
      }
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code: number) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
    ws.on('error', () => {});
  }

  /** Waits for a frame matching `pred` (looking at frames already received too). */
  async waitFor(pred: (f: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const t0 = Date.now();
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`WebSocket: no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`);
      }
      await sleep(50);
    }
  }

  close(): void {
    this.ws.close(1000);
  }
}

export function readConsole(vm: Vm): string {
  try {
    return fs.readFileSync(vm.consoleLog, 'utf8');
  } catch {
    return '';
  }
}
