import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { infraWipe } from '../../../dev/infra/local-infra.ts';
import { localInfraSettings } from '../../../dev/infra/settings.ts';

test('`lifeline dev down --wipe` deletes the broker data and the registry schemas, and keeps the jar cache, logs and certificates', () => {
  const home = mkdtempSync(join(tmpdir(), 'lifeline-wipe-'));
  try {
    const files = {
      topic: join(home, 'kafka', 'data', 'charges-0', '00000000000000000000.log'),
      schemas: join(home, 'registry', 'registry.mv.db'),
      jar: join(home, 'cache', 'kafka', 'kafka_2.13.jar'),
      log: join(home, 'logs', 'kafka.log'),
      credentials: join(home, 'kafka', 'credentials.json'),
    };
    for (const file of Object.values(files)) {
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, 'x');
    }
    // Nothing runs in this home: down stops nothing, then wipes.
    const run = spawnSync(process.execPath, ['bin/lifeline.mjs', 'dev', 'down', '--wipe'], { encoding: 'utf8', env: { ...process.env, LIFELINE_HOME: home } });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /kafka: was not running; registry: was not running/);
    assert.match(run.stdout, /wiped: .*kafka\/data, .*registry/);
    assert.equal(existsSync(join(home, 'kafka', 'data')), false);
    assert.equal(existsSync(join(home, 'registry')), false);
    for (const kept of [files.jar, files.log, files.credentials]) assert.ok(existsSync(kept), `${kept} was kept`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('wiping refuses while the broker of that home still runs, and deletes nothing', async () => {
  const home = mkdtempSync(join(tmpdir(), 'lifeline-wipe-'));
  const standIn = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const topic = join(home, 'kafka', 'data', 'charges-0', '00000000000000000000.log');
    mkdirSync(join(topic, '..'), { recursive: true });
    writeFileSync(topic, 'x');
    mkdirSync(join(home, 'run'), { recursive: true });
    writeFileSync(join(home, 'run', 'kafka.pid'), `${standIn.pid}\n`);
    // Ports nothing listens on: the status check's probes fail at once.
    const settings = { ...localInfraSettings(home), root: home, kafkaPort: 1, registryPort: 2, registryManagementPort: 3 };
    await assert.rejects(infraWipe(settings), (error: Error) => error.message.includes(`not wiping: kafka`) && error.message.includes(`pid ${standIn.pid}`));
    assert.ok(existsSync(topic), 'the topic data is still there');
  } finally {
    standIn.kill();
    rmSync(home, { recursive: true, force: true });
  }
});
