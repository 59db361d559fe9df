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

/**
 * `LIFELINE_FAULT_LOSE_COMMIT_ANSWER=<fraction>`: after the broker committed a transaction, the
 * process behaves as if the answer had been lost (a request time-out): the outcome of the commit is
 * unknown to it. That fraction of the process's commits, evenly spaced (0.2: the 5th, 10th, …), so a
 * test knows how often it strikes. Unset (always, outside tests), it does nothing.
 */
const loseCommitAnswer = Number(process.env.LIFELINE_FAULT_LOSE_COMMIT_ANSWER ?? 0);
let commitsAnswered = 0;

export function maybeLoseCommitAnswer(): void {
  if (loseCommitAnswer <= 0) return;
  commitsAnswered++;
  if (Math.floor(commitsAnswered * loseCommitAnswer) > Math.floor((commitsAnswered - 1) * loseCommitAnswer)) {
    process.stderr.write('lifeline: fault injection: commit answer lost\n');
    throw Object.assign(new Error('fault injection: the answer to EndTxn was lost'), { name: 'KafkaJSProtocolError', type: 'REQUEST_TIMED_OUT', retriable: true });
  }
}
