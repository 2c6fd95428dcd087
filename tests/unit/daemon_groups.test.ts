import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupSpecError, groupBit, groupsOfMask, parseGroupList, parseGroupsField, parseMaskText } from '../../daemon/netlink/groups';

test('mask text: decimal, 0x, 0b, upper case, leading zeros', () => {
  assert.deepEqual(parseMaskText('10'), [2, 4]);
  assert.deepEqual(parseMaskText('0xa'), [2, 4]);
  assert.deepEqual(parseMaskText('0XA'), [2, 4]);
  assert.deepEqual(parseMaskText('0b1010'), [2, 4]);
  assert.deepEqual(parseMaskText('0B1010'), [2, 4]);
  assert.deepEqual(parseMaskText('010'), [2, 4], 'a leading zero is still decimal, not octal');
  assert.deepEqual(parseMaskText('1'), [1]);
  assert.deepEqual(
    parseMaskText('4294967295'),
    Array.from({ length: 32 }, (_, i) => i + 1),
  );
});

test('mask text wider than 32 bits names groups above 32', () => {
  assert.deepEqual(parseMaskText('0x8000000002'), [2, 40]);
  assert.deepEqual(parseMaskText((1n << 1023n).toString()), [1024]);
});

test('bad mask text is refused with a reason', () => {
  for (const bad of ['', ' 10', '10 ', '-1', '0x', '0b', '0b102', '0xg', '1e3', '1.5', 'ten', '0o7']) {
    assert.throws(() => parseMaskText(bad), GroupSpecError, JSON.stringify(bad));
  }
  assert.throws(() => parseMaskText('0'), /selects no group/);
  assert.throws(() => parseMaskText('0x' + '1'.padEnd(257, '0')), /above 1024/);
});

test('group lists', () => {
  assert.deepEqual(parseGroupList('2,40'), [2, 40]);
  assert.deepEqual(parseGroupList(' 40 , 2 ,2'), [2, 40], 'sorted and unique');
  for (const bad of ['', ',', '2,', 'a', '0', '1025', '2;3', '-1']) assert.throws(() => parseGroupList(bad), GroupSpecError, bad);
});

test('the groups field: number, text or list', () => {
  assert.deepEqual(parseGroupsField(10), [2, 4]);
  assert.deepEqual(parseGroupsField(0x80000000), [32]);
  assert.deepEqual(parseGroupsField('0b1010'), [2, 4]);
  assert.deepEqual(parseGroupsField([4, 2, 4]), [2, 4]);
  assert.throws(() => parseGroupsField(0), /selects no group/);
  assert.throws(() => parseGroupsField(2 ** 32), /0\.\.4294967295/);
  assert.throws(() => parseGroupsField(1.5), GroupSpecError);
  assert.throws(() => parseGroupsField([]), /empty/);
  assert.throws(() => parseGroupsField([0]), /outside/);
  assert.throws(() => parseGroupsField(['2']), GroupSpecError);
  assert.throws(() => parseGroupsField(true), GroupSpecError);
});

test('groupsOfMask and groupBit agree for every group 1..32', () => {
  for (let g = 1; g <= 32; g++) {
    assert.deepEqual(groupsOfMask(groupBit(g)), [g]);
  }
  assert.equal(groupBit(32), 0x80000000);
});

test('groupsOfMask: a 32-bit number gives what the same mask as a BigInt gives', () => {
  const masks = [1, 2, 3, 0x80000000, 0xffffffff, 0x7fffffff, 0x4000000];
  let x = 12345;
  for (let i = 0; i < 2000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    if (x !== 0) masks.push(x);
  }
  for (const m of masks) assert.deepEqual(groupsOfMask(m), groupsOfMask(BigInt(m)), `mask ${m}`);
  assert.throws(() => groupsOfMask(0), /no group/);
  assert.throws(() => groupsOfMask(-1), /negative/);
  assert.deepEqual(groupsOfMask(2 ** 32), [33], 'past 32 bits: the BigInt path');
});
