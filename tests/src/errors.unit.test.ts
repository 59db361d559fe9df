import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '../../src/errors.ts';

test('docs/errors.md documents exactly the codes src/errors.ts defines, with the same retriable flag', () => {
  const doc = readFileSync('docs/errors.md', 'utf8');
  const documented = new Map<string, string>();
  for (const match of doc.matchAll(/^\| `(LL_[A-Z0-9_]+)` \| (yes|no) \|/gm)) documented.set(match[1] as string, match[2] as string);
  const defined = Object.entries(ERROR_CODES);
  assert.deepEqual([...documented.keys()].sort(), defined.map(([code]) => code).sort());
  for (const [code, { retriable }] of defined) assert.equal(documented.get(code), retriable ? 'yes' : 'no', `${code} retriable flag`);
});
