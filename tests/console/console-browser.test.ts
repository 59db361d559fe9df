import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildConsolePage } from '../../testing/console-page.ts';
import { DEAD_LETTER_PATIENT, PATIENT_IDS, startConsoleFixture, type ConsoleFixture } from './console-fixture.ts';

/**
 * The console page in a real headless Chromium (Debian's, driven by playwright-core) against a
 * live flow on the real broker: a viewer logs in, sees the flows graph with each node's health,
 * opens a node, goes to the dead letters and sees the record with its PHI masked (and no replay
 * button); an operator plans a replay after a dry run and an approver approves it. Screenshots of
 * each page are kept in LIFELINE_SCREENSHOT_DIR (default: a folder under the OS temp dir).
 */

const CHROMIUM = process.env.LIFELINE_CHROMIUM ?? '/usr/bin/chromium';
/** Without the background-networking flags Chromium keeps calling home, which this machine's closed network refuses. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const SCREENSHOTS = process.env.LIFELINE_SCREENSHOT_DIR ?? join(tmpdir(), 'lifeline-console-screenshots');

let fixture: ConsoleFixture;
let browser: Browser;
let assetsDir: string | undefined;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set LIFELINE_CHROMIUM`);
  // The page is built by the project's own toolchain, from the sources under test, into a folder of this test's own.
  assetsDir = await buildConsolePage();
  mkdirSync(SCREENSHOTS, { recursive: true });
  fixture = await startConsoleFixture({ assetsDir });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  await fixture?.close();
  if (assetsDir) rmSync(assetsDir, { recursive: true, force: true });
});

async function logIn(page: Page, identity: 'viola' | 'otto' | 'april' | 'adam', path: string): Promise<void> {
  await page.goto(`${fixture.console.url}${path}`);
  await page.getByTestId('login-identity').fill(identity);
  await page.getByTestId('login-token').fill(fixture.as(identity)['x-lifeline-token'] as string);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('who').waitFor();
}

function assertNoPhi(html: string, where: string): void {
  for (const mrn of [...PATIENT_IDS, DEAD_LETTER_PATIENT]) assert.ok(!html.includes(mrn), `${where} shows the patient id ${mrn}`);
}

test('a viewer sees the flows graph with each node\'s health, a node\'s detail, and the dead letters with PHI masked; no button they may not use', { timeout: 180_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const started = Date.now();
  await logIn(page, 'viola', '/flows');
  await page.getByTestId('flow-graph').waitFor();
  const firstPaintMs = Date.now() - started;

  // The dedup node turns amber (a dead letter) once its process has reported its status.
  const dedupNode = page.getByTestId(`node-${fixture.dedup}`);
  await page.waitForFunction((id) => document.querySelector(`[data-testid="node-${id}"]`)?.getAttribute('data-health') === 'warn', fixture.dedup, { timeout: 60_000 });
  assert.equal(await page.getByTestId(`node-${fixture.source}`).getAttribute('data-health'), 'ok');
  assert.match(await page.getByTestId(`node-${fixture.dedup}-dlq`).textContent() ?? '', /DLQ 1/);
  assert.equal(await page.getByTestId(`edge-${fixture.source}-${fixture.dedup}`).count(), 1, 'the source → dedup edge');
  assert.match(await page.getByTestId('last-refreshed').first().textContent() ?? '', /Last refreshed: \d/);
  await page.screenshot({ path: join(SCREENSHOTS, 'flows.png'), fullPage: true });

  // A node's detail: its health, partitions and config.
  await dedupNode.click();
  await page.waitForURL(`**/flows/${fixture.dedup}`);
  await page.getByTestId('node-config').waitFor();
  assert.match(await page.getByTestId('node-config').textContent() ?? '', /"ttl": "1d"/);
  assert.equal(await page.getByTestId('node-detail-health').textContent(), 'warn');
  await page.screenshot({ path: join(SCREENSHOTS, 'flow-node.png'), fullPage: true });

  // Dead letters: the overview, then the component's records, PHI masked.
  await page.getByTestId('nav-dead-letters').click();
  await page.waitForURL('**/dead-letters');
  await page.getByTestId(`dlq-${fixture.dedup}`).click();
  await page.waitForURL(`**/dead-letters/${fixture.dedup}`);
  const value = page.getByTestId('dead-letter-value').first();
  await value.waitFor();
  const shown = await value.textContent() ?? '';
  assert.match(shown, /"patient_id": "\[PHI\]"/);
  assert.match(shown, /clinic\|charge\|NOKEY/);
  assert.equal(await page.getByTestId('replay-form').count(), 0, 'a viewer sees no replay button');
  assertNoPhi(await page.content(), 'the dead-letter page');
  await page.screenshot({ path: join(SCREENSHOTS, 'dead-letters.png'), fullPage: true });

  // Every page is reachable by its URL and says when it was refreshed.
  for (const path of ['/sla', '/trace', '/consumers', '/topics', `/topics/${fixture.received}`, '/audit']) {
    await page.goto(`${fixture.console.url}${path}`);
    await page.getByTestId('who').waitFor();
    if (path !== '/trace') await page.waitForFunction(() => /Last refreshed: \d/.test(document.querySelector('[data-testid="last-refreshed"]')?.textContent ?? ''), undefined, { timeout: 30_000 });
    assertNoPhi(await page.content(), path);
    await page.screenshot({ path: join(SCREENSHOTS, `${path.slice(1).replace(/\//g, '-')}.png`), fullPage: true });
  }
  await context.close();
  assert.ok(firstPaintMs < 10_000, `the graph appeared ${firstPaintMs} ms after login started`);
});

test('an operator dry-runs and plans a replay; an approver approves it in another session', { timeout: 180_000 }, async () => {
  const operator = await browser.newContext();
  const page = await operator.newPage();
  await logIn(page, 'otto', `/dead-letters/${fixture.dedup}`);
  await page.getByTestId('dry-run').click();
  const impact = page.getByTestId('dry-run-result');
  await impact.waitFor();
  assert.match(await impact.textContent() ?? '', /1 to replay/);
  await page.getByTestId('replay-reason').fill('sender fixed its headers');
  await page.getByTestId('plan-replay').click();
  const message = page.getByTestId('replay-message');
  await message.waitFor();
  const planned = await message.textContent() ?? '';
  const id = /(rp-\d{8}-[0-9a-f]{6})/.exec(planned)?.[1];
  assert.ok(id, `a plan id in "${planned}"`);
  assert.match(planned, /waits for an approver/);
  assert.equal(await page.getByTestId('approve').count(), 0, 'an operator sees no Approve button');
  await page.screenshot({ path: join(SCREENSHOTS, 'replay-planned.png'), fullPage: true });
  await operator.close();

  const approver = await browser.newContext();
  const approverPage = await approver.newPage();
  approverPage.on('dialog', (dialog) => void dialog.accept('checked the cause'));
  await logIn(approverPage, 'april', '/dead-letters');
  const row = approverPage.getByTestId(`plan-${id}`);
  await row.getByTestId('approve').click();
  await approverPage.getByTestId('plan-message').waitFor();
  assert.match(await approverPage.getByTestId('plan-message').textContent() ?? '', new RegExp(`${id}: executed .*replayed 1`));
  await approverPage.screenshot({ path: join(SCREENSHOTS, 'replay-approved.png'), fullPage: true });
  await approver.close();
});

test('the catalogue shows each subject\'s compatibility and versions; an admin reveals one PHI field of one message, a viewer cannot', { timeout: 120_000 }, async () => {
  const viewer = await browser.newContext();
  const viewerPage = await viewer.newPage();
  await logIn(viewerPage, 'viola', '/topics');
  const row = viewerPage.getByTestId('topics').locator('tr', { hasText: fixture.deduplicated });
  await row.getByTestId('compatibility').waitFor({ timeout: 30_000 });
  assert.equal(await row.getByTestId('compatibility').textContent(), 'BACKWARD');
  assert.equal(await row.getByTestId('versions').textContent(), '1');
  await viewerPage.goto(`${fixture.console.url}/topics/${fixture.deduplicated}`);
  await viewerPage.getByTestId('message-value').first().waitFor();
  assert.equal(await viewerPage.getByTestId('reveal-patient_id').count(), 0, 'a viewer sees no reveal button');
  await viewer.close();

  const admin = await browser.newContext();
  const page = await admin.newPage();
  page.on('dialog', (dialog) => void dialog.accept('patient asked for a copy of the bill'));
  await logIn(page, 'adam', `/topics/${fixture.deduplicated}`);
  await page.getByTestId('message-value').first().waitFor();
  assert.match(await page.getByTestId('message-value').first().textContent() ?? '', /"patient_id": "\[PHI\]"/);
  await page.getByTestId('reveal-patient_id').first().click();
  await page.getByTestId('revealed-field').waitFor();
  const values = await page.getByTestId('message-value').allTextContents();
  const revealed = values.filter((text) => PATIENT_IDS.some((mrn) => text.includes(mrn)));
  assert.equal(revealed.length, 1, 'one message revealed');
  assert.match(revealed[0] ?? '', /"account_ref": "\[PHI\]"/, 'its other PHI fields stay masked');
  assert.equal(values.filter((text) => text.includes('"patient_id": "[PHI]"')).length, values.length - 1, 'the other messages stay masked');
  await page.screenshot({ path: join(SCREENSHOTS, 'message-field-revealed.png'), fullPage: true });
  await admin.close();
});
