import type { StoredReport } from './report-store.js';

/** Failures of one code from one agent version, in the window. */
export interface FailureGroup {
  readonly code: string;
  readonly agent_version: string;
  /** Distinct reports (by id). */
  readonly reports: number;
  /** Distinct agents that sent them. */
  readonly agents: number;
  /** When the newest of them was received (ISO 8601). */
  readonly last_received: string;
}

export interface FailureSummary {
  readonly since: string;
  readonly groups: readonly FailureGroup[];
}

/**
 * The failures (codes ERR_*; EVT_* are events, not failures) received from `since` on, grouped by
 * code and agent version, the most reported first (then the most recent). By the time the server
 * received them, not the agent's `time`: agent clocks are not to be trusted, and a report buffered
 * through an outage is news when it arrives. Counts distinct report ids, so a report stored twice
 * (its id forgotten, see REPORT_ID_TTL_S) counts once. One function for both stores.
 */
export async function summarizeFailures(reports: AsyncIterable<StoredReport>, since: Date): Promise<FailureSummary> {
  const groups = new Map<string, { code: string; agent_version: string; ids: Set<string>; agents: Set<string>; last: number }>();
  for await (const { receivedAt, report } of reports) {
    if (receivedAt < since || !report.code.startsWith('ERR_')) continue;
    const key = JSON.stringify([report.code, report.agent_version]);
    const group = groups.get(key) ?? { code: report.code, agent_version: report.agent_version, ids: new Set(), agents: new Set(), last: 0 };
    groups.set(key, group);
    group.ids.add(report.id);
    group.agents.add(report.agent_id);
    group.last = Math.max(group.last, receivedAt.getTime());
  }
  const sorted = [...groups.values()].sort((a, b) => b.ids.size - a.ids.size || b.last - a.last || a.code.localeCompare(b.code));
  return {
    since: since.toISOString(),
    groups: sorted.map((g) => ({ code: g.code, agent_version: g.agent_version, reports: g.ids.size, agents: g.agents.size, last_received: new Date(g.last).toISOString() })),
  };
}

/** The summary as a table for a terminal, with a heading line that says what it covers. */
export function failuresTable(summary: FailureSummary): string {
  const total = summary.groups.reduce((sum, g) => sum + g.reports, 0);
  const heading = `failures received since ${summary.since}: ${total} report(s) in ${summary.groups.length} group(s)\n`;
  if (summary.groups.length === 0) return heading;
  const rows = [['CODE', 'VERSION', 'REPORTS', 'AGENTS', 'LAST RECEIVED'], ...summary.groups.map((g) => [g.code, g.agent_version, String(g.reports), String(g.agents), g.last_received])];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  // Counts are right-aligned, text left-aligned.
  const line = (row: string[]) =>
    row
      .map((cell, column) => (column === 2 || column === 3 ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${heading}${rows.map(line).join('\n')}\n`;
}
