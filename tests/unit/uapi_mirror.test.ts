// The TypeScript mirror of the UAPI header must say what the header says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as codec from '../../addon/codec';
import * as dnl from '../../addon/dummy_netlink';

const HEADER = path.resolve(__dirname, '../../../module/include/uapi/linux/dummy_netlink.h');
const source = readFileSync(HEADER, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');

function defines(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of source.matchAll(/^#define\s+(DNL_\w+)\s+(\S+)\s*$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

function enumMembers(name: string): Map<string, number> {
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(source)?.[1];
  assert.ok(body, `enum ${name} not found in the header`);
  const out = new Map<string, number>();
  for (const m of body.matchAll(/(\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)/g)) out.set(m[1]!, Number(m[2]));
  return out;
}

const TYPE_SIZES: Record<string, number> = { __u8: 1, __u16: 2, __u32: 4, __u64: 8 };

/** Size of a struct of naturally aligned __uN fields (the header uses no others). */
function structSize(name: string): number {
  const body = new RegExp(`struct ${name} \\{([^}]*)\\}`).exec(source)?.[1];
  assert.ok(body, `struct ${name} not found in the header`);
  let size = 0;
  let maxAlign = 1;
  for (const m of body.matchAll(/(__u\d+)\s+\w+;/g)) {
    const s = TYPE_SIZES[m[1]!];
    assert.ok(s, `unknown field type ${m[1]}`);
    size = Math.ceil(size / s) * s + s;
    maxAlign = Math.max(maxAlign, s);
  }
  return Math.ceil(size / maxAlign) * maxAlign;
}

test('every DNL_ #define in the header has the same value in the mirror', () => {
  const found = defines();
  assert.ok(found.size >= 6);
  for (const [name, value] of found) {
    assert.equal((dnl as unknown as Record<string, unknown>)[name], value, name);
  }
});

test('message types match enum dnl_msg_type, name for name', () => {
  const members = enumMembers('dnl_msg_type');
  assert.equal(members.size, 6);
  assert.equal(
    members.size,
    Object.keys(dnl.DnlMsgType).filter((k) => Number.isNaN(Number(k))).length,
    'the mirror has no type the header lacks',
  );
  for (const [name, value] of members) {
    const short = name.replace(/^DNL_MSG_/, '') as keyof typeof dnl.DnlMsgType;
    assert.equal(dnl.DnlMsgType[short], value, name);
    assert.equal(dnl.dnlTypeName(value), short);
  }
});

test('struct sizes match the header, and every struct of the header is mirrored', () => {
  for (const [name, size] of Object.entries(dnl.DNL_STRUCT_SIZES)) {
    assert.equal(structSize(name), size, name);
  }
  const structs = [...source.matchAll(/^struct (dnl_\w+) \{/gm)].map((m) => m[1]);
  assert.deepEqual(structs.sort(), Object.keys(dnl.DNL_STRUCT_SIZES).sort());
});

test('struct dnl_relayed is the requester port id then uid, as decodeRelayed reads them', () => {
  const body = /struct dnl_relayed \{([^}]*)\}/.exec(source)![1]!;
  assert.deepEqual(
    [...body.matchAll(/__u32\s+(\w+);/g)].map((m) => m[1]),
    ['portid', 'uid'],
  );
  const payload = dnl.encodeRelayed({ portId: 0x01020304, uid: 65534 }, Buffer.from('x'));
  assert.equal(payload.readUInt32LE(0), 0x01020304);
  assert.equal(payload.readUInt32LE(4), 65534);
});

test('dnl_stats counters are the header fields, in order', () => {
  const body = /struct dnl_stats \{([^}]*)\}/.exec(source)![1]!;
  const fields = [...body.matchAll(/__u64\s+(\w+);/g)].map((m) => m[1]);
  assert.deepEqual(fields, [...dnl.DNL_STATS_COUNTERS]);
});

/** The kernel's own header, as installed for the addon's build (linux-libc-dev). */
const NETLINK_H = '/usr/include/linux/netlink.h';

test(
  "the <linux/netlink.h> constants the codec mirrors have the header's values",
  { skip: !existsSync(NETLINK_H) && `no ${NETLINK_H}` },
  () => {
    const header = readFileSync(NETLINK_H, 'utf8');
    const names = [
      'NETLINK_USERSOCK',
      'NLMSG_ALIGNTO',
      'NLMSG_NOOP',
      'NLMSG_ERROR',
      'NLMSG_DONE',
      'NLMSG_OVERRUN',
      'NLMSG_MIN_TYPE',
    ] as const;
    const flags = ['NLM_F_REQUEST', 'NLM_F_MULTI', 'NLM_F_ACK', 'NLM_F_ECHO', 'NLM_F_DUMP_INTR', 'NLM_F_DUMP_FILTERED'] as const;
    for (const name of [...names, ...flags]) {
      const m = new RegExp(`^#define\\s+${name}\\s+(0x[0-9a-fA-F]+|\\d+)U?\\b`, 'm').exec(header);
      assert.ok(m, `${name} is not #defined in ${NETLINK_H}`);
      assert.equal(codec[name], Number(m[1]), name);
    }
    // NLMSG_HDRLEN is NLMSG_ALIGN(sizeof(struct nlmsghdr)): five fields, 4 + 2 + 2 + 4 + 4 bytes.
    assert.deepEqual(
      [...(/struct nlmsghdr \{([^}]*)\}/.exec(header)?.[1] ?? '').matchAll(/__u(\d+)\s+\w+;/g)].map((m) => Number(m[1]) / 8),
      [4, 2, 2, 4, 4],
    );
    assert.equal(codec.NLMSG_HDRLEN, 16);
  },
);
