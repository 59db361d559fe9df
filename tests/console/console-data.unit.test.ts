import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maskSecrets, normaliseMessage } from '../../src/console/console-data.ts';

test('console: config views mask secrets at any depth; error fingerprints ignore ids and values', () => {
  assert.deepEqual(maskSecrets({ connection: 'main', password: 'hunter2', partners: [{ name: 'a', secrets: ['whsec_x'], webhook_secret: 's' }], nested: { api_key: 'k', token: '' } }), {
    connection: 'main', password: '[SECRET]', partners: [{ name: 'a', secrets: '[SECRET]', webhook_secret: '[SECRET]' }], nested: { api_key: '[SECRET]', token: '' },
  });
  assert.equal(normaliseMessage('partner "ACME" row 12 failed for 3fa85f64-5717-4562-b3fc-2c963f66afa6'), 'partner <value> row <n> failed for <id>');
});

