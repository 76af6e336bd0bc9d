import type { Logger } from '../../base/logger.js';
import { isUpdatingState } from '../../common/agent-state.js';
import type { IpcCommand, StatusData } from '../../common/ipc.js';
import type { CommandHandler } from './ipc-server.js';
import type { StateMachine } from './state-machine.js';

export interface CommandTargets {
  readonly state: StateMachine;
  readonly log: Logger;
  readonly status: () => StatusData;
  /** Starts the one graceful shutdown. */
  readonly stop: (reason: string) => void;
  /** The update service, or undefined when updates are off on this agent. */
  readonly updates: () => { readonly checking: boolean; trigger(source: 'request'): void } | undefined;
}

/**
 * What the agent does for each IPC command (the commands and replies are common/ipc.ts). A reply
 * goes out before any effect (`after`): a `--force` requester waits for the lock the shutdown frees.
 */
export function commandHandler(targets: CommandTargets): CommandHandler {
  const { state, log } = targets;
  return (command: IpcCommand, { clientPid }) => {
    const current = state.state;
    switch (command) {
      case 'status':
        return { reply: { status: 'ok', data: targets.status() } };
      case 'force_restart':
        if (isUpdatingState(current)) {
          log.info(`force restart requested by pid ${clientPid} refused: busy in ${current}`);
          return { reply: { status: 'busy_updating', message: `the agent is updating (${current}); try again when it is done` } };
        }
        return {
          reply: { status: 'ok', message: 'shutting down', data: targets.status() },
          after: () => {
            const reason = `force restart requested by pid ${clientPid}`;
            if (state.state !== 'SHUTTING_DOWN' && state.state !== 'FORCE_RESTARTING') state.setState('FORCE_RESTARTING', reason);
            targets.stop(reason);
          },
        };
      case 'check_for_update': {
        const updates = targets.updates();
        if (!updates) return { reply: { status: 'not_available', message: 'updates are off on this agent (see its log)' } };
        if (updates.checking) return { reply: { status: 'ok', message: 'a check is already running', data: targets.status() } };
        return { reply: { status: 'ok', message: 'check started', data: targets.status() }, after: () => updates.trigger('request') };
      }
      case 'show_diagnostics':
      case 'diagnostics':
      case 'diagnostics_bundle':
        return { reply: { status: 'not_available', message: `${command} is not yet available in this version of Outpost` } };
    }
  };
}
