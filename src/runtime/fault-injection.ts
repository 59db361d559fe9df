/**
 * Crash points for tests that prove "a crash loses nothing and duplicates nothing". A transaction
 * is sent and committed in a few milliseconds, so a kill from outside rarely lands inside one;
 * `LIFELINE_FAULT_KILL_BEFORE_COMMIT=<probability>` makes the process SIGKILL itself after the
 * outputs and offsets were sent but before the commit. Unset (always, outside tests), it does nothing.
 */
const killBeforeCommit = Number(process.env.LIFELINE_FAULT_KILL_BEFORE_COMMIT ?? 0);

export function maybeCrashBeforeCommit(): void {
  if (killBeforeCommit > 0 && Math.random() < killBeforeCommit) {
    process.stderr.write('lifeline: fault injection: SIGKILL before commit\n');
    process.kill(process.pid, 'SIGKILL');
  }
}
