// A POST /send body (or a WebSocket client's JSON object) as a bus request.

import type { SendRequest } from '../netlink/send_plan';
import { Problem } from '../errors';
import { GroupSpecError, parseGroupsField } from '../netlink/groups';

export interface SendBody {
  groups?: number | string | number[];
  pid?: number;
  relay?: number;
  data?: string;
  encoding?: 'utf8' | 'base64' | 'hex';
  type?: number;
  flags?: number;
  ack?: boolean;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

export function decodeData(data: string | undefined, encoding: SendBody['encoding']): Buffer {
  const text = data ?? '';
  switch (encoding ?? 'utf8') {
    case 'utf8':
      return Buffer.from(text, 'utf8');
    case 'base64':
      if (!BASE64.test(text)) throw new Problem('BAD_DATA', 'data is not valid base64 (RFC 4648, with padding)', { field: 'data' });
      return Buffer.from(text, 'base64');
    case 'hex':
      if (!HEX.test(text)) throw new Problem('BAD_DATA', 'data is not valid hex (an even number of 0-9a-f digits)', { field: 'data' });
      return Buffer.from(text, 'hex');
  }
}

/** A schema-valid body → a bus request. Throws Problem naming the field. */
export function toSendRequest(body: SendBody): SendRequest {
  const req: SendRequest = { data: decodeData(body.data, body.encoding) };
  if (body.groups !== undefined) {
    try {
      req.groups = parseGroupsField(body.groups);
    } catch (err) {
      if (err instanceof GroupSpecError) throw new Problem('BAD_GROUPS', `groups: ${err.message}`, { field: 'groups' });
      throw err;
    }
  }
  if (body.pid !== undefined) req.pid = body.pid;
  if (body.relay !== undefined) req.relay = body.relay;
  if (body.type !== undefined) req.type = body.type;
  if (body.flags !== undefined) req.flags = body.flags;
  if (body.ack !== undefined) req.ack = body.ack;
  return req;
}
