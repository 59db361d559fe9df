// The Odoo simulator as it fills: the per-record cost of what odoo_sink asks (a `load` of 200
// one-line vendor bills by external id, the external-id lookup before it, a search by ref) from an
// empty database to 100,000 bills. The filling goes in-process through the same ORM (fast); each
// measurement goes over XML-RPC as the sink's calls do. Before the indexes, a record cost 2.9 ms
// empty and 11.7 ms at 12,000 bills (external ids, uniqueness checks and `in` searches scanned
// whole tables). `npm run bench -- odoo-simulator` (BENCH_LEVELS to change the fill levels).
import { OdooClient } from '../connectors/odoo/odoo-client.ts';
import { FailureSwitches } from '../dev/odoo-simulator/failure-switches.ts';
import { startOdooSimulator } from '../dev/odoo-simulator/odoo-simulator.ts';
import { Orm } from '../dev/odoo-simulator/orm.ts';

const LEVELS = (process.env.BENCH_LEVELS ?? '0,10000,25000,50000,100000').split(',').map(Number);
const BATCH = 200;

const simulator = await startOdooSimulator({ port: 0 });
const client = new OdooClient({ url: simulator.url, database: simulator.database, username: 'admin', password: 'admin' });
const [lab] = await client.searchRead('res.partner', [['ref', '=', 'LAB-QUEST-WD']], { fields: ['id'] });
const [product] = await client.searchRead('product.product', [['default_code', '=', 'CPT-80053']], { fields: ['id'] });
const FIELDS = ['id', 'move_type', 'partner_id/.id', 'ref', 'invoice_line_ids/product_id/.id', 'invoice_line_ids/name', 'invoice_line_ids/price_unit', 'invoice_line_ids/tax_ids/.id'];
const rowsFor = (prefix: string, from: number, count: number): string[][] =>
  Array.from({ length: count }, (_, index) => [`bench.${prefix}_${from + index}`, 'in_invoice', String(lab?.id), `${prefix}-${from + index}`, String(product?.id), 'CMP', '14.49', '']);

let filled = 0;
function fillTo(level: number): void {
  while (filled < level) {
    const count = Math.min(2_000, level - filled);
    const txn = simulator.store.begin(2);
    const orm = new Orm({ uid: 2, txn, switches: new FailureSwitches(), context: {}, groups: new Set(['base.group_system']), authorPartnerId: 3 });
    orm.call('account.move', 'load', [FIELDS, rowsFor('FILL', filled, count)], {});
    txn.commit();
    filled += count;
  }
}

interface Row { level: number; loadMs: number; lookupMs: number; searchMs: number; moves: number; rows: number }
const results: Row[] = [];
let probe = 0;
for (const level of LEVELS) {
  fillTo(level);
  global.gc?.();
  const timings: number[] = [];
  const lookups: number[] = [];
  const searches: number[] = [];
  for (let round = 0; round < 3; round++) {
    const prefix = `PROBE${probe++}`;
    const rows = rowsFor(prefix, 0, BATCH);
    let started = performance.now();
    await client.searchRead('ir.model.data', [['module', '=', 'bench'], ['name', 'in', rows.map((row) => (row[0] as string).slice('bench.'.length))]], { fields: ['name', 'res_id'] });
    lookups.push(performance.now() - started);
    started = performance.now();
    const result = await client.load('account.move', FIELDS, rows);
    timings.push((performance.now() - started) / BATCH);
    if (result.ids === false) throw new Error(result.messages.map((message) => message.message).join('; '));
    started = performance.now();
    await client.searchCount('account.move', [['ref', 'in', [`${prefix}-7`, 'FILL-3']]]);
    searches.push(performance.now() - started);
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  const rows = ['account.move', 'account.move.line', 'ir.model.data', 'mail.message'].reduce((sum, model) => sum + simulator.store.table(model).size, 0);
  results.push({ level, loadMs: median(timings), lookupMs: median(lookups), searchMs: median(searches), moves: simulator.store.table('account.move').size, rows });
  console.error(`${level}: ${median(timings).toFixed(2)} ms/record`);
}
client.close();
await simulator.close();

console.log(`\nOdoo simulator per-record cost as it fills (load of ${BATCH} one-line vendor bills by external id, median of 3, over XML-RPC on loopback)\n`);
const header = ['bills already stored', 'rows in the 4 main tables', 'load: ms per bill', 'external-id lookup of 200 (ms)', 'search ref in [...] (ms)'];
const table = results.map((row) => [row.level.toLocaleString('en-US'), row.rows.toLocaleString('en-US'), row.loadMs.toFixed(2), row.lookupMs.toFixed(1), row.searchMs.toFixed(1)]);
const widths = header.map((title, column) => Math.max(title.length, ...table.map((row) => (row[column] as string).length)));
const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join(' | ')} |`;
console.log(line(header));
console.log(`| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`);
for (const row of table) console.log(line(row));
