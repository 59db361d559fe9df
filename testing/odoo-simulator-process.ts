import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The Odoo simulator in a process of its own (`lifeline dev odoo`), as a benchmark needs it: its
 * CPU is then not charged to the Lifeline processes under measurement. Switches, counts and
 * `resetData()` (back to the seed data) go over its HTTP control endpoint.
 */
export class OdooSimulatorProcess {
  private child: ChildProcess | undefined;
  private exited = true;
  private lines: string[] = [];
  url = '';
  port = 0;
  database = '';
  credentials = { username: '', password: '' };

  static async start(port = 0): Promise<OdooSimulatorProcess> {
    const simulator = new OdooSimulatorProcess();
    await simulator.spawn(port);
    return simulator;
  }

  private async spawn(port: number): Promise<void> {
    this.lines = [];
    const child = spawn(process.execPath, ['bin/lifeline.mjs', 'dev', 'odoo', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = false;
    child.on('exit', () => {
      this.exited = true;
    });
    let partial = '';
    const collect = (chunk: Buffer): void => {
      partial += chunk.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts);
      if (this.lines.length > 200) this.lines.splice(0, this.lines.length - 200);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const deadline = Date.now() + 60_000;
    for (;;) {
      // "odoo simulator on http://127.0.0.1:PORT: database DB, user USER, API key KEY"
      const started = this.lines.map((line) => /^odoo simulator on (http:\/\/[^\s]+?:(\d+)): database (\S+), user (\S+), API key (\S+)$/.exec(line)).find((match) => match);
      if (started) {
        this.url = started[1] as string;
        this.port = Number(started[2]);
        this.database = (started[3] as string).replace(/,$/, '');
        this.credentials = { username: (started[4] as string).replace(/,$/, ''), password: started[5] as string };
        return;
      }
      if (this.exited) throw new Error(`lifeline dev odoo exited before it listened:\n${this.lines.join('\n')}`);
      if (Date.now() > deadline) throw new Error(`lifeline dev odoo did not listen within 60 s:\n${this.lines.join('\n')}`);
      await sleep(100);
    }
  }

  /** The simulator's process id while it runs (a benchmark reads its CPU time). */
  get pid(): number | undefined {
    return this.exited ? undefined : this.child?.pid;
  }

  /** POST /__simulator/control (e.g. `{ cost: {...} }`, `{ slow_ms: 500 }`); answers the state. */
  async control(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const response = await fetch(`${this.url}/__simulator/control`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`simulator control answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  }

  /** GET /__simulator/state: switches, rows per main model, calls per model.method. */
  async state(): Promise<{ records: Record<string, number>; calls: Record<string, number> }> {
    const response = await fetch(`${this.url}/__simulator/state`);
    return (await response.json()) as { records: Record<string, number>; calls: Record<string, number> };
  }

  /** Empties the database back to its seed data (same process, port and connections). */
  async resetData(): Promise<void> {
    await this.control({ reset_data: true });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || this.exited) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
