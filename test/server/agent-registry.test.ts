/**
 * The single node's agents file (server/agent-registry.ts FileAgentRegistry), as a crash leaves it:
 * a line that is not an event is skipped and counted, and a line still being written (no newline
 * yet) is read once it is whole, never half.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FileAgentRegistry, newToken, tokenHash } from '../../server/agent-registry.js';
import { tempDir } from '../helpers/paths.js';

const enrolled = (agentId: string, token: string) => JSON.stringify({ event: 'enrolled', agent_id: agentId, token_sha256: tokenHash(token), at: '2026-12-08T00:00:00.000Z' });

test('the agents file: a damaged line is skipped and said once; a line without its newline yet is read when it is whole', async (t) => {
  const file = path.join(tempDir(t, 'outpost-agents-'), 'agents.jsonl');
  const [first, second] = [newToken(), newToken()];
  const late = enrolled('agent-2', second);
  // A good line, a damaged one, and the first half of a line being appended.
  fs.writeFileSync(file, `${enrolled('agent-1', first)}\n{"event":"enrol\n${late.slice(0, 40)}`);
  const logged: string[] = [];
  const registry = await FileAgentRegistry.open({ file, now: () => new Date(), log: (line) => logged.push(line), followMs: 0 });
  t.after(() => registry.close());

  assert.deepEqual(logged, [`agents: skipped 1 unreadable line(s) in ${file} (a torn last line is left by a crash mid-write)`]);
  assert.deepEqual(await registry.identify(first), { kind: 'agent', agentId: 'agent-1' });
  assert.deepEqual(await registry.identify(second), { kind: 'unknown' }, 'half a line is not read');

  fs.appendFileSync(file, `${late.slice(40)}\n`);
  assert.deepEqual(
    (await registry.list()).map((agent) => agent.agent_id),
    ['agent-1', 'agent-2'],
  );
  assert.deepEqual(await registry.identify(second), { kind: 'agent', agentId: 'agent-2' }, 'read once whole');
});
