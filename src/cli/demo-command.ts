import type { Command } from 'commander';

/**
 * `lifeline demo`: believable partner traffic for the golden path (topology.yaml) — lab charges as
 * HL7 v2 webhooks, supply deliveries as FHIR webhooks, pharmacy dispenses as CSV file drops — with
 * the duplicates partners make (retried and re-sent webhooks, overlapping and re-dropped files) and
 * a few amended charges. Webhook secrets come from the same environment variables the topology
 * references (dev/start.sh writes them to .lifeline/dev-secrets.env).
 */
export function registerDemoCommand(program: Command): void {
  program.command('demo')
    .description('send partner traffic (HL7 lab charges, FHIR supply deliveries, pharmacy CSV files) with retries and duplicates to a running golden path')
    .option('--events <n>', 'partner events to send, duplicates included', '1000')
    .option('--duplicates <ratio>', 'share of events that repeat an earlier one', '0.2')
    .option('--corrections <n>', 'amended lab charges sent at the end', '10')
    .option('--rate <events-per-second>', 'pace (0 = as fast as answers come)', '50')
    .option('--webhook-url <url>', 'where partner_webhooks listens', 'http://127.0.0.1:8088')
    .option('--inbox <dir>', 'folder holding the pharmacy inboxes', process.env.LIFELINE_INBOX_DIR ?? '.lifeline/inbox')
    .option('--seed <n>', 'random seed (the same seed plans the same traffic, under a new run id)', '20261129')
    .action(async (options: { events: string; duplicates: string; corrections: string; rate: string; webhookUrl: string; inbox: string; seed: string }) => {
      // dev/ loads only when the demo runs.
      const [{ planTraffic }, { sendTraffic, webhookSecretVariable }] = await Promise.all([import('../../dev/demo/partner-traffic.ts'), import('../../dev/demo/traffic-sender.ts')]);
      const plan = planTraffic({
        events: Number(options.events), duplicateRatio: Number(options.duplicates), corrections: Number(options.corrections), seed: Number(options.seed),
      });
      const partners = ['quest_lab', 'labcorp', 'mckesson', 'medline'];
      const secrets = Object.fromEntries(partners.map((partner) => [partner, process.env[webhookSecretVariable(partner)] ?? '']));
      const missing = partners.filter((partner) => !secrets[partner]).map(webhookSecretVariable);
      if (missing.length > 0) {
        console.error(`lifeline demo: set ${missing.join(', ')} (dev/start.sh writes them to .lifeline/dev-secrets.env: \`set -a; . .lifeline/dev-secrets.env; set +a\`)`);
        process.exitCode = 2;
        return;
      }
      const rate = Number(options.rate);
      console.log(`run ${plan.runId}: ${plan.counts.events} events (${plan.counts.unique} unique, ${plan.counts.duplicates} duplicates) + ${plan.counts.corrections} corrections → ${options.webhookUrl}, ${options.inbox}`);
      const stats = await sendTraffic(plan.deliveries, { webhookUrl: options.webhookUrl, secrets, inboxDir: options.inbox, ...(rate > 0 ? { ratePerSecond: rate } : {}) });
      const rows: Array<[string, string | number]> = [
        ['lab charges (unique records)', plan.expected.charges.size],
        ['supply deliveries (unique records)', plan.expected.deliveries.size],
        ['pharmacy dispenses (unique records)', plan.expected.dispenses.size],
        ['webhooks accepted', stats.accepted],
        ['webhooks answered "duplicate"', stats.duplicateAnswers],
        ['attempts retried (5xx, lost)', stats.retriedAttempts],
        ['files dropped', stats.files],
        ['failed', stats.failed.length],
        ['events per second', Math.round((stats.events * 1000) / Math.max(1, stats.elapsedMs))],
      ];
      for (const [label, value] of rows) console.log(`${label.padEnd(38)} ${value}`);
      for (const failure of stats.failed.slice(0, 5)) console.log(`  ${failure.webhookId}: ${failure.status} ${failure.body}`);
      if (stats.failed.length > 0) process.exitCode = 1;
    });
}
