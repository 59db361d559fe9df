import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { topologyFixtureDir, withLine, writeFixture } from '../../../testing/topology-fixtures.ts';

const lifeline = fileURLToPath(new URL('../../../bin/lifeline.mjs', import.meta.url));

// A TCP server standing in for both the Kafka broker and the schema registry: validation must
// read the file and nothing else, so it must see no connection at all.
let server: Server;
let port: number;
let connections = 0;
let dir: string;
/** What the test's own sentinel connection says first, and what to call when the server has read it. */
const SENTINEL = 'lifeline-test-sentinel';
let sentinelAccepted: (() => void) | undefined;

before(async () => {
  server = createServer((socket) => {
    connections += 1;
    socket.on('error', () => undefined);
    socket.once('end', () => socket.destroy());
    socket.once('data', (chunk: Buffer) => {
      if (chunk.toString() === SENTINEL) {
        connections -= 1;
        sentinelAccepted?.();
      }
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  dir = topologyFixtureDir();
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real CLI in the fixture folder, asynchronously so the server above can still accept. */
function runLifeline(args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [lifeline, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A sentinel instead of a sleep: after the command has exited, the test connects itself and waits
 * until the server has accepted that connection. The listen queue hands connections over in the
 * order they arrived, so any connection the command made before it exited has been counted by then.
 */
async function acceptedUntilSentinel(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    sentinelAccepted = resolve;
    const socket = connect(port, '127.0.0.1', () => socket.end(SENTINEL));
    socket.on('error', reject);
  });
  sentinelAccepted = undefined;
}

/** The fixture with brokers and registry pointing at the listening server. */
function topologyAtServer(): string {
  return withLine(6, `    url: http://127.0.0.1:${port}/apis/ccompat/v7`, withLine(4, `    brokers: ["127.0.0.1:${port}"]`));
}

test('topology validate prints every problem, exits 1, and opens no connection', async () => {
  const bad = withLine(29, '      ttl: 15 minutes', withLine(25, '    inputs: [lab.charge.recieved.v1]', topologyAtServer()));
  writeFixture(dir, 'bad.yaml', bad);
  const result = await runLifeline(['topology', 'validate', '--topology', 'bad.yaml']);
  await acceptedUntilSentinel();
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /^bad\.yaml:25:14 processors\.counter\.inputs\[0\]: topic lab\.charge\.recieved\.v1 is not declared under topics$/m);
  assert.match(result.stderr, /^bad\.yaml:29:12 processors\.counter\.config\.ttl: must match duration like 15m, 7d/m);
  assert.match(result.stderr, /^bad\.yaml is invalid: 2 problems$/m);
  assert.equal(connections, 0, 'validation must not connect to Kafka or the registry');
});

test('topology validate --json prints the problems as data', async () => {
  writeFixture(dir, 'bad.yaml', withLine(11, '    partitions: 0', topologyAtServer()));
  const result = await runLifeline(['topology', 'validate', '--topology', 'bad.yaml', '--json']);
  await acceptedUntilSentinel();
  assert.equal(result.code, 1);
  const report = JSON.parse(result.stdout) as { valid: boolean; problems: unknown[] };
  assert.equal(report.valid, false);
  assert.deepEqual(report.problems, [{
    file: 'bad.yaml', line: 11, column: 17, path: 'topics.lab.charge.received.v1.partitions', message: 'must be at least 1 (got 0)',
  }]);
  assert.equal(connections, 0);
});

test('topology validate on a valid file says what it holds and exits 0, still without connecting', async () => {
  writeFixture(dir, 'topology.yaml', topologyAtServer());
  const result = await runLifeline(['topology', 'validate']);
  await acceptedUntilSentinel();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'topology.yaml is valid: 2 topics, 1 component\n');
  assert.equal(connections, 0);
});
