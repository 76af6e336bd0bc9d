import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeError } from '../app/base/errors.js';
import { redactSecrets } from '../app/base/redact.js';
import { AgentId, ENROLLMENT_SECRET } from '../app/common/enrollment.js';
import { ExitCode } from '../app/common/exit-codes.js';
import { isRedisUrl } from '../app/common/publish-events.js';
import { type AgentRegistry, FileAgentRegistry, newToken } from './agent-registry.js';
import { RedisAgentRegistry } from './redis-agent-registry.js';
import { RedisLink } from './redis-link.js';

/** What an operator command of outpost-server is given: a clock, its two outputs, and the usage to print on a bad argument. */
export interface CommandIo {
  readonly now: () => Date;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly usage: string;
}

/** `outpost-server new-enrollment-secret`: a fresh secret on stdout, for the secrets file and the installers. */
export function newEnrollmentSecretMain(argv: readonly string[], io: CommandIo): number {
  if (argv.length > 0) {
    io.stderr(`outpost-server: new-enrollment-secret takes no arguments (got "${argv.join(' ')}")\n\n${io.usage}`);
    return ExitCode.USAGE;
  }
  // The same 32 random bytes as a token: as hard to guess.
  io.stdout(`${newToken()}\n`);
  return ExitCode.OK;
}

/**
 * `outpost-server agents list|revoke AGENT_ID [--agents FILE | --redis URL]`: what an operator does
 * with the enrolled agents, in the store the servers use, while they run. A revoked agent's push
 * channel is closed by every node (within a second for a single node following its file; at once
 * through Redis), its reports are refused, and it cannot enroll again.
 */
export async function agentsMain(argv: readonly string[], io: CommandIo, defaultAgentsFile: string): Promise<number> {
  let parsed: ReturnType<typeof parseAgentsArgs>;
  try {
    parsed = parseAgentsArgs(argv);
  } catch (error) {
    return usage(io, describeError(error));
  }
  const { values, positionals } = parsed;
  const [action, agentId, ...rest] = positionals;
  if (rest.length > 0 || (action === 'list' && agentId !== undefined)) return usage(io, `unexpected "${[action === 'list' ? agentId : undefined, ...rest].filter(Boolean).join(' ')}"`);
  if (action !== 'list' && action !== 'revoke') return usage(io, 'agents takes list or revoke AGENT_ID');
  if (action === 'revoke' && (agentId === undefined || !AgentId.safeParse(agentId).success)) return usage(io, 'agents revoke needs an agent id (1 to 100 of A-Z a-z 0-9 . _ -)');
  if (values.redis !== undefined && values.agents !== undefined) return usage(io, 'use --agents FILE (one node) or --redis URL (several), not both');
  if (values.redis !== undefined && !isRedisUrl(values.redis)) return usage(io, `--redis must be a redis:// or rediss:// URL (got "${values.redis}")`);

  let registry: AgentRegistry;
  let link: RedisLink | undefined;
  const log = (line: string) => io.stderr(`${line}\n`);
  if (values.redis !== undefined) {
    try {
      link = await RedisLink.openOneShot(values.redis);
      registry = new RedisAgentRegistry(link, { now: io.now, log });
    } catch (error) {
      io.stderr(`outpost-server: cannot reach Redis at ${redactSecrets(values.redis)}: ${describeError(error)}\n`);
      return ExitCode.UNAVAILABLE;
    }
  } else {
    const file = path.resolve(values.agents ?? defaultAgentsFile);
    if (!fs.existsSync(file)) {
      io.stderr(`outpost-server: no agents file ${file}: no agent has enrolled with a server using it (see --agents)\n`);
      return ExitCode.NO_INPUT;
    }
    registry = await FileAgentRegistry.open({ file, now: io.now, log, followMs: 0 });
  }
  try {
    if (action === 'list') {
      const agents = await registry.list();
      if (values.json) io.stdout(`${JSON.stringify({ agents })}\n`);
      else for (const agent of agents) io.stdout(`${agent.agent_id}  enrolled ${agent.enrolled_at}${agent.revoked_at ? `  REVOKED ${agent.revoked_at}` : ''}\n`);
      return ExitCode.OK;
    }
    const outcome = await registry.revoke(agentId as string);
    io.stdout(`${agentId}: ${outcome}\n`);
    return outcome === 'unknown agent' ? ExitCode.NO_INPUT : ExitCode.OK;
  } catch (error) {
    io.stderr(`outpost-server: agents ${action} failed: ${describeError(error)}\n`);
    return ExitCode.UNAVAILABLE;
  } finally {
    await registry.close();
    link?.close();
  }
}

/**
 * The enrollment secrets a server accepts, one per line (blank lines and # comments skipped): more
 * than one while an old secret is being replaced. Returns them, or a sentence saying what is wrong.
 */
export function readEnrollmentSecrets(file: string): { secrets: string[]; warning?: string } | string {
  let text: string;
  let mode: number;
  try {
    text = fs.readFileSync(file, 'utf8');
    mode = fs.statSync(file).mode;
  } catch (error) {
    return `cannot read the enrollment secrets ${file}: ${describeError(error)}`;
  }
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  const secrets = lines.filter((line) => line !== '' && !line.startsWith('#'));
  const bad = secrets.findIndex((secret) => !ENROLLMENT_SECRET.test(secret));
  if (bad >= 0) return `${file}: secret ${bad + 1} is not one: each line holds 32 to 256 characters A-Z a-z 0-9 _ - (outpost-server new-enrollment-secret makes one)`;
  if (secrets.length === 0) return `${file} holds no enrollment secret (outpost-server new-enrollment-secret makes one)`;
  // POSIX modes only: on Windows the mode bits say nothing of who may read the file.
  const readable = process.platform !== 'win32' && (mode & 0o077) !== 0;
  return readable ? { secrets, warning: `${file} can be read by other users (mode ${(mode & 0o777).toString(8)}): chmod 600 it` } : { secrets };
}

function parseAgentsArgs(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: { agents: { type: 'string' }, redis: { type: 'string' }, json: { type: 'boolean' } }, strict: true, allowPositionals: true });
}

function usage(io: CommandIo, problem: string): number {
  io.stderr(`outpost-server: ${problem}\n\n${io.usage}`);
  return ExitCode.USAGE;
}
