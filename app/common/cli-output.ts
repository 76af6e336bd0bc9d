/**
 * The line the foreground `outpost` command prints once the agent is IDLE. Scripts, the demo, the
 * benchmarks and the tests wait for it, so it is written and matched from this one place.
 */
export function runningLine(version: string, pid: number, storage: string): string {
  return `Outpost ${version} running (pid ${pid}, storage ${storage}); stop with Ctrl+C`;
}

/** Matches `runningLine`; group 1 is the pid. (Not the refusal "Another Outpost is running (pid N".) */
export const RUNNING_LINE = /Outpost \d\S* running \(pid (\d+)/;
