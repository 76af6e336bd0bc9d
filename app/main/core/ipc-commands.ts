import type { Logger } from '../../base/logger.js';
import { isUpdatingState } from '../../common/agent-state.js';
import type { DiagnosticsApi, ReadParams } from '../../common/diagnostics.js';
import type { IpcCommand, StatusData } from '../../common/ipc.js';
import { askForCheck, type CheckControl } from './update/check-request.js';
import type { CommandHandler, CommandResult } from './ipc-server.js';
import type { StateMachine } from './state-machine.js';

export interface CommandTargets {
  readonly state: StateMachine;
  readonly log: Logger;
  readonly status: () => StatusData;
  /** Starts the one graceful shutdown. */
  readonly stop: (reason: string) => void;
  /** The update service, or undefined when updates are off on this agent. */
  readonly updates: () => CheckControl | undefined;
  /** What the diagnostics page reads (`outpost diagnostics` asks for it over IPC). */
  readonly diagnostics: Pick<DiagnosticsApi, 'read' | 'bundle'>;
  /** The desktop app's diagnostics window; undefined for the `outpost` command, which has none. */
  readonly showDiagnostics: (() => void) | undefined;
}

/**
 * What the agent does for each IPC command (the commands and replies are common/ipc.ts). A reply
 * goes out before any effect (`after`): a `--force` requester waits for the lock the shutdown frees.
 */
export function commandHandler(targets: CommandTargets): CommandHandler {
  const { state, log } = targets;
  return (command: IpcCommand, { clientPid, args }) => {
    const current = state.state;
    /** `force_restart` and `quit` while the agent changes its own installation: refused, nothing done. */
    const busy = (what: string): CommandResult | null => {
      if (!isUpdatingState(current)) return null;
      log.info(`${what} requested by pid ${clientPid} refused: busy in ${current}`);
      return { reply: { status: 'busy_updating', message: `the agent is updating (${current}); try again when it is done` } };
    };
    switch (command) {
      case 'status':
        return { reply: { status: 'ok', data: targets.status() } };
      case 'force_restart':
        return (
          busy('force restart') ?? {
          reply: { status: 'ok', message: 'shutting down', data: targets.status() },
          after: () => {
            const reason = `force restart requested by pid ${clientPid}`;
            if (state.state !== 'SHUTTING_DOWN' && state.state !== 'FORCE_RESTARTING') state.setState('FORCE_RESTARTING', reason);
            targets.stop(reason);
          },
        });
      case 'quit':
        return busy('quit') ?? { reply: { status: 'ok', message: 'shutting down', data: targets.status() }, after: () => targets.stop(`quit requested by pid ${clientPid}`) };
      case 'check_for_update': {
        const answer = askForCheck(targets.updates());
        if (!answer.ok) return { reply: { status: 'not_available', message: answer.message } };
        return { reply: { status: 'ok', message: answer.message, data: targets.status() }, ...(answer.start && { after: answer.start }) };
      }
      case 'show_diagnostics':
        if (!targets.showDiagnostics) {
          return { reply: { status: 'not_available', message: 'this agent runs without a desktop (the `outpost` command): run `outpost diagnostics` for its diagnostics page' } };
        }
        return { reply: { status: 'ok', message: 'diagnostics window opened' }, after: targets.showDiagnostics };
      case 'diagnostics':
        return targets.diagnostics.read(args as ReadParams).then((view) => ({ reply: { status: 'ok', view } }));
      case 'diagnostics_bundle':
        return targets.diagnostics.bundle().then((bundle) => ({ reply: { status: 'ok', bundle } }));
    }
  };
}
