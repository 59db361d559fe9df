import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { authenticate, isAllowed, parseOperatorDirectory, DEFAULT_AUTO_APPROVE_BELOW } from '../../src/ops/operator-identity.ts';

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

const DIRECTORY = `
policy:
  auto_approve_below: 25
operators:
  viola: { roles: [viewer], token_sha256: ${digest('viola-token-0123456789')} }
  otto: { roles: [operator], token_sha256: ${digest('otto-token-0123456789')} }
  april: { roles: [approver], token: april-token-0123456789 }
  adam: { roles: [admin], token_sha256: ${digest('adam-token-0123456789')} }
`;

test('identities authenticate by token (digest or plain), compared without saying which part was wrong', () => {
  const directory = parseOperatorDirectory(DIRECTORY, 'operators.yaml');
  assert.equal(directory.autoApproveBelow, 25);
  const otto = authenticate(directory, { identity: 'otto', token: 'otto-token-0123456789' });
  assert.ok(otto.ok && otto.operator.roles.includes('operator'));
  const april = authenticate(directory, { identity: 'april', token: 'april-token-0123456789' });
  assert.ok(april.ok);
  const wrong = authenticate(directory, { identity: 'otto', token: 'adam-token-0123456789' });
  const unknown = authenticate(directory, { identity: 'mallory', token: 'otto-token-0123456789' });
  assert.ok(!wrong.ok && !unknown.ok);
  assert.equal(wrong.why.replace('otto', 'X'), unknown.why.replace('mallory', 'X'), 'a wrong token and an unknown identity read alike');
  assert.ok(!wrong.why.includes('adam-token'), 'the token is never echoed');
  const anonymous = authenticate(directory, {});
  assert.ok(!anonymous.ok && anonymous.claimed === 'anonymous' && /LIFELINE_OPERATOR/.test(anonymous.why));
  const unconfigured = authenticate(undefined, { identity: 'otto', token: 'x' });
  assert.ok(!unconfigured.ok && /LIFELINE_OPERATORS_FILE/.test(unconfigured.why));
});

test('roles: viewers change nothing, operators reset and replay, approvers approve, only admins reveal PHI', () => {
  const directory = parseOperatorDirectory(DIRECTORY, 'operators.yaml');
  const as = (identity: string, token: string) => {
    const result = authenticate(directory, { identity, token });
    assert.ok(result.ok);
    return result.operator;
  };
  const viola = as('viola', 'viola-token-0123456789');
  const otto = as('otto', 'otto-token-0123456789');
  const april = as('april', 'april-token-0123456789');
  const adam = as('adam', 'adam-token-0123456789');
  for (const action of ['offsets.reset', 'dlq.replay', 'replay.plan', 'replay.approve', 'consume.reveal', 'produce'] as const) assert.equal(isAllowed(viola, action), false, action);
  assert.ok(isAllowed(otto, 'offsets.reset') && isAllowed(otto, 'dlq.replay') && isAllowed(otto, 'replay.plan'));
  assert.ok(!isAllowed(otto, 'replay.approve') && !isAllowed(otto, 'consume.reveal'));
  assert.ok(isAllowed(april, 'replay.approve') && !isAllowed(april, 'offsets.reset'));
  assert.ok(isAllowed(adam, 'consume.reveal') && isAllowed(adam, 'replay.approve') && isAllowed(adam, 'offsets.reset'));
});

test('an operators file that does not match its schema is refused with the path', () => {
  assert.throws(() => parseOperatorDirectory('operators:\n  otto: { roles: [superuser], token: otto-token-0123456789 }\n', 'ops.yaml'), { code: 'LL_OPERATORS_INVALID', message: /ops\.yaml: \/operators\/otto\/roles/ });
  assert.throws(() => parseOperatorDirectory('operators:\n  otto: { roles: [operator] }\n', 'ops.yaml'), { code: 'LL_OPERATORS_INVALID', message: /exactly one of token_sha256 and token/ });
  assert.throws(() => parseOperatorDirectory('operators: {}\nextra: 1\n', 'ops.yaml'), { code: 'LL_OPERATORS_INVALID' });
  assert.equal(parseOperatorDirectory('{"operators": {}}', 'env').autoApproveBelow, DEFAULT_AUTO_APPROVE_BELOW, 'JSON works too');
});
