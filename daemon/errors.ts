// Every error the API returns, in one table. Responses are RFC 9457
// application/problem+json: { type, title, status, detail, code, field?, errno? }.
// The netlink side's own errors (BusError) become problems here, in one place:
// problemOf.

import { BusError, WHAT, type BusErrorCode } from './netlink/errors';
import { SendError } from './netlink/send_plan';

export const PROBLEMS = {
  VALIDATION: { status: 400, title: 'Invalid request' },
  BAD_GROUPS: { status: 400, title: 'Invalid group selection' },
  BAD_DATA: { status: 400, title: 'Invalid payload encoding' },
  UNAUTHORIZED: { status: 401, title: 'Authentication required' },
  HOST_NOT_ALLOWED: { status: 403, title: 'Host not allowed' },
  ORIGIN_NOT_ALLOWED: { status: 403, title: 'Origin not allowed' },
  PERMISSION_DENIED: { status: 403, title: "Not permitted (by the token's scope or the daemon's netlink privileges)" },
  NOT_FOUND: { status: 404, title: 'Not found' },
  PORT_UNREACHABLE: { status: 404, title: 'No socket has that port id' },
  FLEET_NOT_CONFIGURED: { status: 404, title: 'No fleet on this daemon (started without --nats)' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  NO_KERNEL_ENDPOINT: { status: 409, title: 'No kernel endpoint on this protocol' },
  NEEDS_KERNEL: { status: 409, title: 'Needs the dummy_netlink kernel module' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request not received in time' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  UPGRADE_REQUIRED: { status: 426, title: 'WebSocket upgrade required' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  LIMIT_REACHED: { status: 429, title: 'A per-token limit is reached' },
  INTERNAL: { status: 500, title: 'Internal error' },
  SEND_FAILED: { status: 502, title: 'Netlink send failed' },
  PEER_BUSY: { status: 503, title: 'Receiver busy' },
  SHUTTING_DOWN: { status: 503, title: 'Shutting down' },
  KERNEL_TIMEOUT: { status: 504, title: 'The kernel did not answer in time' },
} as const;

export type ProblemCode = keyof typeof PROBLEMS;

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  field?: string;
  errno?: string;
  [extra: string]: unknown;
}

export function problemType(code: ProblemCode): string {
  return `urn:nlbridge:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

export class Problem extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly field?: string;
  readonly errno?: string;
  readonly extra?: Record<string, unknown>;

  constructor(code: ProblemCode, detail: string, opts: { field?: string; errno?: string; extra?: Record<string, unknown> } = {}) {
    super(detail);
    this.name = 'Problem';
    this.code = code;
    this.status = PROBLEMS[code].status;
    if (opts.field !== undefined) this.field = opts.field;
    if (opts.errno !== undefined) this.errno = opts.errno;
    if (opts.extra !== undefined) this.extra = opts.extra;
  }

  body(): ProblemBody {
    const b: ProblemBody = {
      type: problemType(this.code),
      title: PROBLEMS[this.code].title,
      status: this.status,
      detail: this.message,
      code: this.code,
    };
    if (this.field !== undefined) b.field = this.field;
    if (this.errno !== undefined) b.errno = this.errno;
    if (this.extra) Object.assign(b, this.extra);
    return b;
  }
}

/** Maps a syscall failure's code to the problem that fits it. */
export function problemForErrno(code: string, detail: string, field?: string): Problem {
  const opts = { errno: code, ...(field !== undefined ? { field } : {}) };
  switch (code) {
    case 'EPERM':
    case 'EACCES':
      return new Problem('PERMISSION_DENIED', detail, opts);
    case 'EAGAIN':
    case 'ENOBUFS':
      return new Problem('PEER_BUSY', detail, opts);
    case 'EMSGSIZE':
      return new Problem('PAYLOAD_TOO_LARGE', detail, opts);
    case 'EINVAL':
      return new Problem('VALIDATION', detail, opts);
    default:
      return new Problem('SEND_FAILED', detail, opts);
  }
}

/** The problem code of each BusError code; 'errno' maps by the errno (problemForErrno). */
const BUS_PROBLEMS: Record<BusErrorCode, ProblemCode | 'errno'> = {
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  NO_DESTINATION: 'VALIDATION',
  RELAY_NOT_ALONE: 'VALIDATION',
  NEEDS_MODULE: 'NEEDS_KERNEL',
  GROUP_RANGE: 'BAD_GROUPS',
  BCAST_TOO_WIDE: 'BAD_GROUPS',
  BCAST_TYPE: 'VALIDATION',
  NO_KERNEL_ENDPOINT: 'NO_KERNEL_ENDPOINT',
  ACK_WITHOUT_KERNEL: 'VALIDATION',
  PEER_BUSY: 'PEER_BUSY',
  PORT_UNREACHABLE: 'PORT_UNREACHABLE',
  SEND_FAILED: 'errno',
  SYSCALL: 'errno',
  KERNEL_REFUSED: 'errno',
  KERNEL_TIMEOUT: 'KERNEL_TIMEOUT',
  BAD_CURSOR: 'VALIDATION',
};

/** The API field of what the bus names in its own words; a send request's parts keep their names. */
const FIELD_OF: Record<string, string> = {
  [WHAT.subscription]: 'mask',
  [WHAT.clientSocket]: 'unicast',
};

/**
 * The problem an error thrown while serving a request stands for: a Problem
 * as it is, a BusError mapped (field named, detail prefixed with it, errno,
 * and what happened per destination for a send that went nowhere), or null
 * for anything else (an internal error).
 */
export function problemOf(err: unknown): Problem | null {
  if (err instanceof Problem) return err;
  if (!(err instanceof BusError)) return null;
  const field = err.what === undefined ? undefined : (FIELD_OF[err.what] ?? err.what);
  // "send failed: …" names its field without a prefix: it is about the whole request.
  const detail = field === undefined || err.code === 'SEND_FAILED' ? err.message : `${field}: ${err.message}`;
  const extra = err instanceof SendError ? { results: err.results, seq: err.seq } : undefined;
  const mapped = BUS_PROBLEMS[err.code];
  const code = mapped === 'errno' ? problemForErrno(err.errno ?? 'EIO', detail).code : mapped;
  return new Problem(code, detail, {
    ...(field !== undefined ? { field } : {}),
    ...(err.errno !== undefined ? { errno: err.errno } : {}),
    ...(extra !== undefined ? { extra } : {}),
  });
}
