/** What a request for an update check ("check now": IPC, tray, diagnostics page) needs of the update service. */
export interface CheckControl {
  readonly checking: boolean;
  trigger(source: 'request'): void;
}

export interface CheckAnswer {
  /** False: no check can run here (updates are off). */
  readonly ok: boolean;
  readonly message: string;
  /** Starts the check; the caller runs it once its answer is on its way. */
  readonly start?: () => void;
}

/** The one answer to "check for updates now", whoever asks. */
export function askForCheck(updates: CheckControl | undefined): CheckAnswer {
  if (!updates) return { ok: false, message: 'updates are off on this agent (see its log)' };
  if (updates.checking) return { ok: true, message: 'a check is already running' };
  return { ok: true, message: 'check started', start: () => updates.trigger('request') };
}
