// A real nats-server for the fleet tests: started from a config file on
// 127.0.0.1 with `port: -1` (a random port; Debian's own service may hold
// 4222), the port read from its ports file (`ports_file_dir`). It can be
// killed (SIGKILL, as a crash) and started again on the same port.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { waitFor } from '../../support/wait';

export class NatsServer {
  private proc: ChildProcess | null = null;
  port = 0;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-nats-'));
  log = '';

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts it: on a random port the first time, on the same port after a kill. */
  async start(extra = ''): Promise<void> {
    const conf = path.join(this.dir, 'nats.conf');
    const portsDir = path.join(this.dir, 'ports');
    fs.rmSync(portsDir, { recursive: true, force: true });
    fs.mkdirSync(portsDir);
    fs.writeFileSync(conf, `host: 127.0.0.1\nport: ${this.port || -1}\nports_file_dir: "${portsDir}"\n${extra}\n`);
    const proc = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (c: Buffer): void => {
      this.log = (this.log + c.toString()).slice(-20000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const file = await waitFor(
      'the nats-server ports file',
      () => {
        if (proc.exitCode !== null) throw new Error(`nats-server exited ${proc.exitCode}: ${this.log}`);
        return fs.readdirSync(portsDir).find((f) => f.endsWith('.ports'));
      },
      { timeoutMs: 10000 },
    );
    const ports = JSON.parse(fs.readFileSync(path.join(portsDir, file!), 'utf8')) as { nats: string[] };
    this.port = Number(new URL(ports.nats[0]).port);
  }

  /** SIGKILL, as a crash: no goodbye to its clients. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    this.proc = null;
  }

  async stop(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A NATS user identified by an nkey: its seed (in a 0600 file, as --nats-nkey takes it) and public key. */
export interface NkeyUser {
  seed: string;
  pub: string;
  file: string;
}

export function nkeyUser(dir: string, name: string): NkeyUser {
  const kp = nkeys.createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  const file = path.join(dir, `${name}.seed`);
  fs.writeFileSync(file, `${seed}\n`, { mode: 0o600 });
  return { seed, pub: kp.getPublicKey(), file };
}
