import { readFileSync, readdirSync } from 'node:fs';

/** Linux's USER_HZ: /proc times are in hundredths of a second on every Linux build Node supports. */
const CLOCK_TICKS = 100;

/** A process's parent and the CPU seconds (user + system) it has used so far, from /proc/<pid>/stat (Linux). */
function procStat(pid: number): { parent: number; cpuSeconds: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name (which may hold spaces and parentheses): state ppid … utime(14) stime(15).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { parent: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
}

/** CPU seconds (user + system) a process has used so far; throws when it is gone or this is not Linux. */
export function cpuSeconds(pid: number): number {
  return procStat(pid).cpuSeconds;
}

/** CPU seconds used so far by a process and every process below it (e.g. `lifeline run --workers N`). */
export function processTreeCpuSeconds(root: number): number {
  const stats = new Map<number, { parent: number; cpuSeconds: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      stats.set(Number(entry), procStat(Number(entry)));
    } catch { /* the process ended meanwhile */ }
  }
  const inTree = (pid: number): boolean => {
    for (let current: number | undefined = pid; current !== undefined && current > 1; current = stats.get(current)?.parent) if (current === root) return true;
    return false;
  };
  let seconds = 0;
  for (const [pid, stat] of stats) if (inTree(pid)) seconds += stat.cpuSeconds;
  return seconds;
}
