// nats-server for the fleet section (issue 18), started as the host tests
// start it (tests/host/support/nats_server.ts): a config file on 127.0.0.1
// with `port: -1` (Debian's own service may hold 4222), the port read from
// its ports file.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Proc, sleep } from './proc';

/**
 * nats-server in PATH or in the sbin directories Debian installs it in; null
 * when absent. BENCH_NATS_SERVER points at another build (and, pointed at
 * nothing, shows the section's skip).
 */
export function natsServerPath(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  const candidates = process.env.BENCH_NATS_SERVER ? [process.env.BENCH_NATS_SERVER] : dirs.map((d) => path.join(d, 'nats-server'));
  for (const file of candidates) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return null;
}

export interface NatsServer {
  url: string;
  proc: Proc;
  stop(): Promise<void>;
}

export async function startNatsServer(program: string): Promise<NatsServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-bench-nats-'));
  const portsDir = path.join(dir, 'ports');
  fs.mkdirSync(portsDir);
  const conf = path.join(dir, 'nats.conf');
  fs.writeFileSync(conf, `host: 127.0.0.1\nport: -1\nports_file_dir: "${portsDir}"\n`);
  const proc = new Proc('nats-server', program, ['-c', conf]);
  const stop = async (): Promise<void> => {
    proc.child.kill('SIGTERM');
    await proc.stop(2000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + 10_000;
  for (;;) {
    const file = fs.readdirSync(portsDir).find((f) => f.endsWith('.ports'));
    if (file) {
      try {
        const ports = JSON.parse(fs.readFileSync(path.join(portsDir, file), 'utf8')) as { nats: string[] };
        return { url: `nats://127.0.0.1:${new URL(ports.nats[0]).port}`, proc, stop };
      } catch {
        // Caught while the server was still writing it: read it again.
      }
    }
    if (proc.exit || Date.now() > until) {
      await stop();
      throw new Error(`nats-server did not start: ${proc.stderr().slice(-500)}`);
    }
    await sleep(50);
  }
}
