// Fan-out at saturation (issue 17): every system ramped to the rate where a
// client falls behind or loses (bench/lib/ramp.ts), for each client count, in
// one section so that the C ceiling, nlbridge's three framings and websocketd
// are measured back to back. The bridges are read by C readers
// (bench/c/nlb_ws_reader.c), so the readers' own cost stays small beside the
// bridge's on two cores.

import type { Profile } from '../lib/profile';
import { ramp, rampThroughReaders, sinkAttempt } from '../lib/ramp';
import { measure, type Figures } from '../lib/result';
import { withDaemon, type NlbridgeOptions } from './nlbridge';
import { buildRrNlk, withWebsocketd } from './websocketd';

const FRAMINGS = [
  ['nlbridge', ''],
  ['nlbridge-batch', '?batch=1'],
  ['nlbridge-binary', '?format=binary'],
] as const;

export async function runFanout(p: Profile, figures: Figures, o: NlbridgeOptions): Promise<void> {
  let rrNlk: unknown = null;
  try {
    buildRrNlk();
  } catch (err) {
    rrNlk = err;
  }
  for (const k of p.fanoutClients) {
    // The ceiling: k netlink sockets in one C process, the kernel's own fan-out.
    await measure(figures, `fanout_${k}`, 'c', () => ramp(p.fanoutRamp, k, (rate) => sinkAttempt(p, k, rate)));
    // One daemon per ramp: an overloaded step leaves nothing behind for the next system.
    for (const [system, query] of p.fanoutFramingsAt.includes(k) ? FRAMINGS : FRAMINGS.slice(0, 1)) {
      await measure(figures, `fanout_${k}`, system, () =>
        withDaemon(p, o, `fanout${k}${query}`, (d) => rampThroughReaders(p, p.fanoutRamp, d.ws(query), k)),
      );
    }
    if (!p.websocketdFanoutClients.includes(k)) continue;
    await measure(figures, `fanout_${k}`, 'websocketd', async () => {
      if (rrNlk) throw rrNlk;
      return withWebsocketd(p, (url) => rampThroughReaders(p, p.fanoutRamp, url, k));
    });
  }
}
