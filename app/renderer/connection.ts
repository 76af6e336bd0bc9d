import { ErrorCode } from '../common/codes.js';
import { hasCode, type LinkState } from './carrier.js';

/** How the page stands with the agent, from the carrier's link and the last read's outcome. */
export type Connection =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'live' }
  /** `seen`: the page has shown a view, which is now old news. */
  | { readonly kind: 'reconnecting'; readonly attempt: number; readonly seen: boolean }
  | { readonly kind: 'no-agent'; readonly message: string }
  | { readonly kind: 'failing'; readonly message: string };

export type ReadOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown } | null;

export function connectionOf(link: LinkState, read: ReadOutcome, seen: boolean): Connection {
  // A dropped link explains every failed read: say that, not each read's own error.
  if (link.kind === 'down') return { kind: 'reconnecting', attempt: link.attempt, seen };
  if (read === null) return { kind: 'connecting' };
  if (read.ok) return { kind: 'live' };
  const message = read.error instanceof Error ? read.error.message : String(read.error);
  return hasCode(read.error, ErrorCode.DIAGNOSTICS_NO_AGENT) ? { kind: 'no-agent', message } : { kind: 'failing', message };
}

export interface ConnectionWords {
  readonly tone: 'good' | 'busy' | 'bad';
  /** The status pill's word or two. */
  readonly label: string;
  /** The banner's sentence (null: nothing to say, the page is live). */
  readonly sentence: string | null;
}

export function describeConnection(connection: Connection): ConnectionWords {
  switch (connection.kind) {
    case 'connecting':
      return { tone: 'busy', label: 'Connecting', sentence: 'Connecting to the agent…' };
    case 'live':
      return { tone: 'good', label: 'Live', sentence: null };
    case 'reconnecting':
      return {
        tone: 'bad',
        label: 'Reconnecting',
        sentence: connection.seen
          ? `Agent unreachable: the connection to outpost diagnostics dropped. Reconnecting (attempt ${connection.attempt})… The values below are from the last successful read.`
          : `Agent unreachable: this page cannot connect to the outpost diagnostics that served it (is it still running?). Retrying (attempt ${connection.attempt})…`,
      };
    case 'no-agent':
      return {
        tone: 'bad',
        label: 'Agent not running',
        sentence: `The agent is not running: ${withoutStop(connection.message)}. This page keeps trying and fills in again when the agent starts.`,
      };
    case 'failing':
      return { tone: 'bad', label: 'Read failed', sentence: `Could not read the agent's state: ${withoutStop(connection.message)}. This page keeps trying.` };
  }
}

/** A message set inside a sentence of the page's own. */
function withoutStop(message: string): string {
  return message.trim().replace(/\.$/, '');
}
