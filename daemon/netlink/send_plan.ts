// The send planner: a send request and the protocol → the sendto calls that
// carry it (legs), or a BusError saying why it cannot go; then, from what
// each sendto did, the report or the error that says why nothing went. Pure:
// no socket, no seq counter, no clock. The bus runs the legs (Bus.send).
//
// Why the legs are what they are (af_netlink.c): sendto broadcasts to group
// ffs(nl_groups) only, so a message for several groups is one sendto per
// group, each with the same seq (receivers drop the copies, dedupe.ts); each
// of them is also a unicast to nl_pid 0, the kernel, which on dummy_netlink
// receives every copy and keeps one, and on NETLINK_USERSOCK fails with
// ECONNREFUSED after the broadcast went out. nl_groups holds 32 groups: above
// that only the kernel can broadcast, asked with dummy_netlink's BCAST.

import { NLM_F_ACK, NLM_F_REQUEST } from '../../addon/codec';
import { DNL_BCAST_GROUPS_MAX, DnlMsgType, encodeBcast, encodeRelay } from '../../addon/dummy_netlink';
import type { AckInfo } from '../../addon/request';
import type { SendResult } from '../../addon/types';
import { BusError, type BusErrorCode, type BusErrorOptions } from './errors';
import { MASK_GROUPS, groupBit, type GroupList } from './groups';
import type { ProtocolInfo } from './protocol';

export interface SendRequest {
  /** Parsed once where the request came in (groups.ts); trusted here. */
  groups?: GroupList;
  /** A port id; 0 is the kernel. */
  pid?: number;
  /** dummy_netlink's RELAY: the kernel forwards the data to this port id. */
  relay?: number;
  data: Buffer;
  type?: number;
  flags?: number;
  ack?: boolean;
}

/** One sendto of a plan. */
export type Leg =
  /** nl_groups = the group's bit, nl_pid 0: the broadcast, then the kernel's copy. */
  | { kind: 'group'; group: number; mask: number }
  /** nl_pid = a port id other than 0. */
  | { kind: 'port'; portId: number }
  /** nl_pid 0 alone: the kernel. */
  | { kind: 'kernel' }
  /** A BCAST request to the kernel, which broadcasts to every group it names. */
  | { kind: 'bcast'; groups: GroupList }
  /** A RELAY request to the kernel, which forwards the data to portId. */
  | { kind: 'relay'; portId: number };

export interface SendPlan {
  /** nlmsg_type on the wire: the request's, or BCAST / RELAY carrying it. */
  type: number;
  flags: number;
  /** The nlmsg payload: the data, or the BCAST / RELAY request holding it. */
  payload: Buffer;
  /** In send order; the kernel's acks come back in the same order (its input runs inside sendto). */
  legs: Leg[];
  /** NLM_F_ACK is set: every leg that reaches the kernel is acknowledged. */
  ack: boolean;
  /** What a failure of every leg is blamed on. */
  what: 'groups' | 'pid' | 'relay';
}

export interface DestinationResult {
  to: 'group' | 'port' | 'kernel' | 'relay';
  group?: number;
  portId?: number;
  /**
   * delivered: the socket layer took it (a broadcast reached every listener
   * with room; a unicast reached the port's queue). kernel-broadcast: the
   * kernel was asked (BCAST) to deliver to this group. no-kernel-endpoint:
   * nothing answers on port 0 of this protocol. port-unreachable: no socket
   * has that port id. busy: the port's receive queue is full (EAGAIN).
   * error: another failure, see `code`.
   */
  result: 'delivered' | 'kernel-broadcast' | 'no-kernel-endpoint' | 'port-unreachable' | 'busy' | 'error';
  code?: string;
  /** The kernel's ack for this destination, when `ack` was asked. */
  ack?: AckInfo | { errno: null; code: 'ETIMEDOUT' };
}

export interface SendReport {
  seq: number;
  portId: number;
  type: number;
  flags: number;
  bytes: number;
  ok: boolean;
  results: DestinationResult[];
}

/** A send that went nowhere: the BusError, with what happened per destination. */
export class SendError extends BusError {
  constructor(
    code: BusErrorCode,
    message: string,
    opts: BusErrorOptions,
    readonly results: DestinationResult[],
    readonly seq: number,
  ) {
    super(code, message, opts);
    this.name = 'SendError';
  }
}

const protocolText = (p: ProtocolInfo): string => `protocol ${p.name} (${p.number})`;

/** Throws GROUP_RANGE for a group the protocol does not have. */
export function checkGroupRange(groups: readonly number[], protocol: ProtocolInfo, what: string): void {
  for (const g of groups) {
    if (g > protocol.maxGroup) {
      throw new BusError('GROUP_RANGE', `group ${g} is above the ${protocol.maxGroup} groups of ${protocolText(protocol)}`, { what });
    }
  }
}

/** The legs of a send request on `protocol`; throws BusError when the request cannot go. */
export function planSend(req: SendRequest, protocol: ProtocolInfo): SendPlan {
  const groups = req.groups ?? ([] as unknown as GroupList);
  const hasGroups = groups.length > 0;
  const hasPid = req.pid !== undefined;
  const hasRelay = req.relay !== undefined;
  const dummy = protocol.name === 'dummy';
  const type = req.type ?? DnlMsgType.DATA;
  if (!hasGroups && !hasPid && !hasRelay)
    throw new BusError('NO_DESTINATION', 'name a destination: groups, pid or relay', { what: 'groups' });
  if (hasRelay && (hasGroups || hasPid)) {
    throw new BusError('RELAY_NOT_ALONE', 'a RELAY request goes to the kernel alone; do not combine it with groups or pid', {
      what: 'relay',
    });
  }
  if (hasRelay && !dummy) {
    throw new BusError('NEEDS_MODULE', `RELAY is a dummy_netlink request; ${protocolText(protocol)} has no such kernel endpoint`, {
      what: 'relay',
    });
  }
  // Ascending: the last group is the highest.
  const wide = hasGroups && groups[groups.length - 1] > MASK_GROUPS;
  if (wide && !dummy) {
    throw new BusError(
      'NEEDS_MODULE',
      `groups above ${MASK_GROUPS} need the kernel's BCAST (dummy_netlink); ${protocolText(protocol)} has none`,
      { what: 'groups' },
    );
  }
  checkGroupRange(groups, protocol, 'groups');
  if (wide && groups.length > DNL_BCAST_GROUPS_MAX) {
    throw new BusError('BCAST_TOO_WIDE', `one BCAST names at most ${DNL_BCAST_GROUPS_MAX} groups, got ${groups.length}`, {
      what: 'groups',
    });
  }
  if (wide && type !== DnlMsgType.DATA) {
    throw new BusError(
      'BCAST_TYPE',
      `the kernel's BCAST delivers DATA (${DnlMsgType.DATA}); another type cannot go to groups above ${MASK_GROUPS}`,
      { what: 'type' },
    );
  }
  if (req.ack && !protocol.kernelEndpoint) {
    throw new BusError('NO_KERNEL_ENDPOINT', `${protocolText(protocol)} has no kernel endpoint to acknowledge`, { what: 'ack' });
  }
  if (req.ack && !(hasGroups || hasRelay || req.pid === 0)) {
    throw new BusError(
      'ACK_WITHOUT_KERNEL',
      'only the kernel acknowledges; this request has no kernel destination (groups, pid 0 or relay)',
      { what: 'ack' },
    );
  }
  if (!hasGroups && !hasRelay && req.pid === 0 && !protocol.kernelEndpoint) {
    throw new BusError('NO_KERNEL_ENDPOINT', `port 0 is the kernel, and ${protocolText(protocol)} has no kernel endpoint`, { what: 'pid' });
  }

  const flags = ((req.flags ?? NLM_F_REQUEST) | (req.ack ? NLM_F_ACK : 0)) & 0xffff;
  const ack = req.ack === true;
  if (hasRelay) {
    return {
      type: DnlMsgType.RELAY,
      flags,
      payload: encodeRelay(req.relay!, req.data),
      legs: [{ kind: 'relay', portId: req.relay! }],
      ack,
      what: 'relay',
    };
  }
  if (wide)
    return {
      type: DnlMsgType.BCAST,
      flags,
      payload: encodeBcast(groups, req.data),
      legs: [{ kind: 'bcast', groups }],
      ack,
      what: 'groups',
    };
  const legs: Leg[] = groups.map((g) => ({ kind: 'group', group: g, mask: groupBit(g) }));
  // With groups, every group leg already reaches port 0.
  if (hasPid && !(hasGroups && req.pid === 0)) legs.push(req.pid === 0 ? { kind: 'kernel' } : { kind: 'port', portId: req.pid! });
  return { type, flags, payload: req.data, legs, ack, what: hasGroups ? 'groups' : 'pid' };
}

/** A destination whose sendto failed with another error than the ones that have a name. */
function failed(r: DestinationResult, failure: SendFailure): DestinationResult {
  r.result = 'error';
  r.code = failure.code;
  return r;
}

/** A failed sendto as the tally needs it (NetlinkError has these). */
export interface SendFailure {
  code: string;
  message: string;
}

/**
 * What the legs of one plan did, in send order: the per-destination results,
 * the ones the kernel acknowledges (paired with its acks in send order), and
 * then the report or the SendError.
 */
export class SendTally {
  readonly results: DestinationResult[] = [];
  /** Results of the legs that reached a kernel socket, in send order: one ack each. */
  readonly ackSlots: DestinationResult[] = [];
  private firstFailure: SendFailure | null = null;
  /** Told once, after the group results: port 0 of this protocol has no socket. */
  private noKernel: DestinationResult | null = null;

  constructor(
    private readonly plan: SendPlan,
    private readonly protocol: ProtocolInfo,
  ) {}

  /** Records what the sendto of `leg` returned or threw. */
  record(leg: Leg, sent: SendResult | SendFailure): void {
    const failure = 'code' in sent ? sent : null;
    this.firstFailure ??= failure;
    if (leg.kind !== 'group') this.flushNoKernel();
    switch (leg.kind) {
      case 'group': {
        const r: DestinationResult = { to: 'group', group: leg.group, result: 'delivered' };
        if (failure) failed(r, failure);
        else if ((sent as SendResult).unicast === 'no-kernel-endpoint') this.noKernel ??= { to: 'kernel', result: 'no-kernel-endpoint' };
        else if (this.protocol.kernelEndpoint) this.ackSlots.push(r);
        this.results.push(r);
        return;
      }
      case 'bcast': {
        for (const g of leg.groups) {
          const r: DestinationResult = { to: 'group', group: g, result: 'kernel-broadcast' };
          this.results.push(failure ? failed(r, failure) : r);
        }
        this.kernelBound(failure, { to: 'kernel', result: 'delivered' });
        return;
      }
      case 'relay':
        this.kernelBound(failure, { to: 'relay', portId: leg.portId, result: 'delivered' });
        return;
      case 'port':
      case 'kernel': {
        const r: DestinationResult =
          leg.kind === 'kernel' ? { to: 'kernel', result: 'delivered' } : { to: 'port', portId: leg.portId, result: 'delivered' };
        if (!failure) {
          if (leg.kind === 'kernel') this.ackSlots.push(r);
        } else if (failure.code === 'ECONNREFUSED') {
          r.result = leg.kind === 'kernel' ? 'no-kernel-endpoint' : 'port-unreachable';
          r.code = failure.code;
        } else if (failure.code === 'EAGAIN') {
          r.result = 'busy';
          r.code = failure.code;
        } else failed(r, failure);
        this.results.push(r);
        return;
      }
    }
  }

  /** A request to the kernel socket itself (BCAST, RELAY): acknowledged when it went out. */
  private kernelBound(failure: SendFailure | null, r: DestinationResult): void {
    if (failure) failed(r, failure);
    else this.ackSlots.push(r);
    this.results.push(r);
  }

  private flushNoKernel(): void {
    if (this.noKernel) this.results.push(this.noKernel);
    this.noKernel = null;
  }

  /**
   * The report, with the kernel's acks (in send order; one missing is
   * ETIMEDOUT), or a SendError when nothing went anywhere.
   */
  finish(seq: number, portId: number, bytes: number, acks: readonly AckInfo[] | null): SendReport {
    this.flushNoKernel();
    const plan = this.plan;
    if (acks !== null) {
      this.ackSlots.forEach((slot, i) => {
        slot.ack = acks[i] ?? { errno: null, code: 'ETIMEDOUT' };
      });
    }
    const results = this.results;
    // With groups, port 0 having no socket (USERSOCK) is how the protocol is, not a failure.
    const failed = results.filter(
      (r) =>
        r.result !== 'delivered' &&
        r.result !== 'kernel-broadcast' &&
        !(r.to === 'kernel' && r.result === 'no-kernel-endpoint' && plan.what === 'groups'),
    );
    const delivered = results.some((r) => r.result === 'delivered' || r.result === 'kernel-broadcast');
    if (!delivered) {
      // Nothing went anywhere: the error that says why, with what happened per destination.
      const only = failed[0];
      if (only?.result === 'busy') {
        throw new SendError(
          'PEER_BUSY',
          `port ${only.portId} is not reading (its receive queue is full); retry later`,
          { what: 'pid', errno: 'EAGAIN' },
          results,
          seq,
        );
      }
      if (only?.result === 'port-unreachable') {
        throw new SendError(
          'PORT_UNREACHABLE',
          `no socket is bound to port id ${only.portId} on protocol ${this.protocol.number}`,
          { what: 'pid', errno: 'ECONNREFUSED' },
          results,
          seq,
        );
      }
      const f = this.firstFailure;
      if (f) throw new SendError('SEND_FAILED', `send failed: ${f.message}`, { what: plan.what, errno: f.code }, results, seq);
    }
    return { seq, portId, type: plan.type, flags: plan.flags, bytes, ok: failed.length === 0, results };
  }
}
