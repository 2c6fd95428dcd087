// Counts and durations of one bench run. The full profile took 136 s before
// the fan-out ramp (issue 17), whose section alone takes 280–330 s on this
// 2-core machine under load; the smoke profile only proves every path still
// runs (tests/host/bench_smoke.test.ts).

export interface Profile {
  name: 'full' | 'smoke';
  /** Runs of the flood and 1,000 msg/s latency figures; the best is kept (see bestOf). */
  repeats: number;
  /** NETLINK_USERSOCK group used by every load (1..32). */
  group: number;
  /** Receive buffer every receiver asks for (SO_RCVBUF; the kernel doubles it). */
  rcvbuf: number;
  /** Socket-level flood: messages, and its time bound. */
  floodCount: number;
  floodSeconds: number;
  /** C sender processes of the socket-level flood: two, so the flood outruns even the C receiver. */
  floodSenders: number;
  /** Latency runs: messages at 1,000 msg/s, and seconds at half saturation. */
  latencyCount: number;
  halfSatSeconds: number;
  /** Most probes sent to warm a WebSocket path up before a measured run. */
  warmupCount: number;
  /** netlink → one WebSocket client flood. */
  wsFloodCount: number;
  wsFloodSeconds: number;
  /**
   * The fleet section's steady run: one WebSocket client at this rate for this
   * long, the daemon's CPU per message with NATS publishing off and on. Below
   * saturation a side's CPU per message is steady (6.13–6.48 µs off over a
   * day's runs), where under the flood it ranges 2× (bench/README.md, issue 18).
   */
  fleetSteadyRate: number;
  fleetSteadySeconds: number;
  /** The fleet's sustained row: one C reader's ramp (RampSettings), each case this many times in turn. */
  fleetRamp: RampSettings;
  fleetRampRounds: number;
  /** Fan-out: client counts (each ramped to saturation, bench/lib/ramp.ts). */
  fanoutClients: number[];
  /** The ramp: see RampSettings. */
  fanoutRamp: RampSettings;
  /** Client counts at which ?batch=1 and ?format=binary are ramped too (one message per frame always is). */
  fanoutFramingsAt: number[];
  /** Most clients one client process holds. */
  clientsPerProcess: number;
  /** websocketd fan-out runs (one rr_nlk process per client). */
  websocketdFanoutClients: number[];
  /** POST /send load: seconds per system, connections. */
  httpSeconds: number;
  httpConnections: number;
  /** WebSocket ingress: frames sent by one client. */
  ingressFrames: number;
  ingressSeconds: number;
  /** Memory: idle clients to connect, slow-reader flood rate, seconds, payload bytes. */
  memoryClients: number;
  slowReaderRate: number;
  slowReaderSeconds: number;
  slowReaderPayload: number;
  /**
   * Runs of the paused-client scenario, each on a new daemon; the figure is
   * their median. One run's RSS peak is the V8 young generation's size at
   * that moment as much as what is held: the same build gave 27.0 and 38.5
   * MiB two minutes apart (bench/README.md, issue 16).
   */
  slowReaderTrials: number;
}

/**
 * The fan-out saturation search (issue 17), with the soak's rule
 * (tests/reliability/soak.test.ts): an attempt at R deliveries/s is clean when
 * the paced sender kept ≥ 97 % of its rate and every client had every message,
 * once and in order, within lagMs of the sender's end, with no client closed;
 * a step is clean by the majority of `tries` attempts. R starts at
 * startDeliveries and doubles until a step is not clean (or halves until one
 * is), then `bisections` bisections; the capacity is the highest clean R.
 */
export interface RampSettings {
  startDeliveries: number;
  maxDeliveries: number;
  bisections: number;
  tries: number;
  attemptSeconds: number;
  lagMs: number;
  /** Most clients one C reader process holds. */
  clientsPerReader: number;
}

export const FULL: Profile = {
  name: 'full',
  repeats: 2,
  group: 27,
  rcvbuf: 4 << 20,
  floodCount: 1_000_000,
  floodSeconds: 3,
  floodSenders: 2,
  latencyCount: 3000,
  halfSatSeconds: 2,
  warmupCount: 20_000,
  wsFloodCount: 600_000,
  wsFloodSeconds: 3,
  fleetSteadyRate: 100_000,
  fleetSteadySeconds: 6,
  // Four bisections of the ×2 search's 200k–400k bracket: steps of 12.5k msg/s, 4 % of one reader's ~300k.
  fleetRamp: {
    startDeliveries: 100_000,
    maxDeliveries: 1_600_000,
    bisections: 4,
    tries: 3,
    attemptSeconds: 1,
    lagMs: 300,
    clientsPerReader: 1,
  },
  fleetRampRounds: 3,
  fanoutClients: [100, 1000],
  fanoutFramingsAt: [100, 1000],
  fanoutRamp: {
    startDeliveries: 200_000,
    maxDeliveries: 12_800_000,
    bisections: 1,
    tries: 3,
    attemptSeconds: 1,
    lagMs: 300,
    clientsPerReader: 500,
  },
  clientsPerProcess: 250,
  websocketdFanoutClients: [100, 1000],
  httpSeconds: 4,
  httpConnections: 16,
  ingressFrames: 200_000,
  ingressSeconds: 4,
  memoryClients: 1000,
  slowReaderRate: 10_000,
  slowReaderSeconds: 5,
  slowReaderPayload: 1024,
  slowReaderTrials: 5,
};

export const SMOKE: Profile = {
  name: 'smoke',
  repeats: 1,
  group: 28,
  rcvbuf: 4 << 20,
  floodCount: 20_000,
  floodSeconds: 1,
  floodSenders: 2,
  latencyCount: 200,
  halfSatSeconds: 0.3,
  warmupCount: 200,
  wsFloodCount: 5000,
  wsFloodSeconds: 1,
  fleetSteadyRate: 5000,
  fleetSteadySeconds: 1,
  fleetRamp: { startDeliveries: 300, maxDeliveries: 300, bisections: 0, tries: 1, attemptSeconds: 0.5, lagMs: 1000, clientsPerReader: 1 },
  fleetRampRounds: 1,
  fanoutClients: [3, 6],
  fanoutFramingsAt: [6],
  fanoutRamp: { startDeliveries: 300, maxDeliveries: 300, bisections: 0, tries: 1, attemptSeconds: 0.5, lagMs: 1000, clientsPerReader: 3 },
  clientsPerProcess: 3,
  websocketdFanoutClients: [3],
  httpSeconds: 1,
  httpConnections: 2,
  ingressFrames: 2000,
  ingressSeconds: 1,
  memoryClients: 10,
  slowReaderRate: 2000,
  slowReaderSeconds: 0.5,
  slowReaderPayload: 1024,
  slowReaderTrials: 1,
};
