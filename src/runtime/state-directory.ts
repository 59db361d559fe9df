import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LifelineError } from '../errors.ts';

const MAX_SLOTS = 64;
/** Slots this process holds (two runtimes in one process, as in tests, get two slots). */
const heldHere = new Set<string>();

export interface ClaimedStateDirectory {
  /** `<state_dir>/slot-<n>`: this process's own state (stores and reference tables). */
  readonly dir: string;
  readonly slot: number;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Gives this process a state directory no other process on the host uses: the lowest slot
 * `<root>/slot-<n>` whose LOCK file is absent or names a process that no longer runs. A restarted
 * process takes its slot back (the lowest free one), so its stores' local checkpoints are found
 * again; any number of processes run one topology.yaml on one host, each in a slot of its own.
 */
export function claimStateDirectory(root: string): ClaimedStateDirectory {
  mkdirSync(root, { recursive: true });
  for (let slot = 0; slot < MAX_SLOTS; slot++) {
    const dir = join(root, `slot-${slot}`);
    if (heldHere.has(dir)) continue;
    mkdirSync(dir, { recursive: true });
    const lock = join(dir, 'LOCK');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }), { flag: 'wx' });
        heldHere.add(dir);
        return {
          dir, slot,
          release: () => {
            heldHere.delete(dir);
            rmSync(lock, { force: true });
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        let owner: { pid?: number; host?: string } = {};
        try {
          owner = JSON.parse(readFileSync(lock, 'utf8')) as typeof owner;
        } catch {
          owner = {}; // half-written by a process that died at once: stale
        }
        // Our own pid here (slots we hold are skipped above) is a previous process's, reused: stale too.
        const stale = owner.pid === undefined || (owner.host === hostname() && (owner.pid === process.pid || !alive(owner.pid)));
        if (!stale) break;
        rmSync(lock, { force: true });
      }
    }
  }
  throw new LifelineError('LL_STATE_DIR_LOCKED', `no free state directory slot under ${root}: all ${MAX_SLOTS} are locked by running processes`);
}
