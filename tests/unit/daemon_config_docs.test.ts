// daemon/README.md's flags table is held to the option schema: every option
// has its row, with its variable and (where the schema has one) its default
// as --help renders it. Outside clients read the table literally.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { OPTIONS, defaultText } from '../../daemon/config/schema';

const README = readFileSync(path.resolve(__dirname, '../../../daemon/README.md'), 'utf8');

test('daemon/README.md has a row per option with its variable and default', () => {
  const rows = new Map<string, string[]>();
  for (const m of README.matchAll(/^\| `(--[a-z-]+)` \| (.*)$/gm))
    rows.set(
      m[1],
      m[2].split(' | ').map((c) => c.replace(/`/g, '').trim()),
    );
  for (const o of OPTIONS) {
    const row = rows.get(o.flag);
    assert.ok(row, `${o.flag} has no row in daemon/README.md`);
    assert.equal(row[0], o.env, o.flag);
    if (o.schema.default !== null) assert.equal(row[1], defaultText(o.schema), `${o.flag} default`);
  }
  assert.equal(
    rows.size,
    OPTIONS.length,
    `rows for flags that are not options: ${[...rows.keys()].filter((f) => !OPTIONS.some((o) => o.flag === f))}`,
  );
});
