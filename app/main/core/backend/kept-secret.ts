import fs from 'node:fs';
import { readTextIfExists, writeFileAtomic } from '../../../base/durable-file.js';
import { describeError, ErrorCode, errnoCode, OutpostError } from '../../../base/errors.js';
import { type CredentialStore, SECRET_SERVICE } from '../../platform/index.js';

/**
 * A credential of the agent's (the organisation's enrollment secret, the agent's own token), kept as
 * the IPC secret is (core/ipc-secret.ts): a per-user agent keeps it in the OS credential store
 * (service "Outpost", account `<kind>-<scope>`); where that store does not answer, and always for a
 * per-machine agent, it is a file in the storage folder that only the folder's owner can read. The
 * file doubles as the marker: where there is one, it is the one in use.
 */
export interface KeptSecretOptions {
  /** For messages: "enrollment secret", "agent token". */
  readonly label: string;
  /** Its file in the storage folder (StoragePaths). */
  readonly file: string;
  /** Its credential store account: `<kind>-<scope>`, one per storage folder. */
  readonly account: string;
  /** What a valid value looks like; anything else is reported as damaged. */
  readonly pattern: RegExp;
  /** A per-machine agent: file only (credential stores belong to one user). */
  readonly elevated: boolean;
  readonly credentials: CredentialStore;
}

export class KeptSecret {
  readonly #options: KeptSecretOptions;

  constructor(options: KeptSecretOptions) {
    this.#options = options;
  }

  /** The value, or null when none is kept. Throws ERR_BACKEND_CREDENTIAL when one is kept but cannot be read or is damaged. */
  read(): { value: string; where: string } | null {
    const { file, label } = this.#options;
    let text: string | null;
    try {
      text = readTextIfExists(file);
    } catch (error) {
      throw new OutpostError(ErrorCode.BACKEND_CREDENTIAL, `Cannot read the ${label} ${file}: ${errnoCode(error) ?? describeError(error)}. Run this as the user the agent runs as.`, { cause: error });
    }
    if (text !== null) return { value: this.#checked(text.trim(), file), where: file };
    const store = this.#store();
    if (store === null) return null;
    let value: string | null;
    try {
      value = store.get(this.#options.account);
    } catch {
      // A store that does not answer holds nothing this agent could have kept there: a fallback would have made the file.
      return null;
    }
    return value === null ? null : { value: this.#checked(value, this.#entryName(store)), where: store.name };
  }

  /** Keeps `value` (replacing any): in the credential store when it answers, else in the file. Returns where. */
  write(value: string): string {
    const { file } = this.#options;
    this.#checked(value, 'the value given');
    const store = this.#store();
    if (store !== null) {
      try {
        store.set(this.#options.account, value);
        fs.rmSync(file, { force: true });
        return store.name;
      } catch {
        // Falls back to the file, as the IPC secret does.
      }
    }
    writeFileAtomic(file, `${value}\n`, 0o600);
    return file;
  }

  /** Removes it from both places (a token the backend no longer knows). */
  forget(): void {
    fs.rmSync(this.#options.file, { force: true });
    try {
      this.#store()?.delete(this.#options.account);
    } catch {
      // Nothing kept there that could be read back either.
    }
  }

  #store(): CredentialStore | null {
    return this.#options.elevated ? null : this.#options.credentials;
  }

  #entryName(store: CredentialStore): string {
    return `the ${store.name} entry "${SECRET_SERVICE}/${this.#options.account}"`;
  }

  #checked(value: string, where: string): string {
    if (!this.#options.pattern.test(value)) {
      throw new OutpostError(ErrorCode.BACKEND_CREDENTIAL, `The ${this.#options.label} in ${where} is damaged (not in its expected form). Set it again (outpost --set-enrollment-secret) or delete it.`);
    }
    return value;
  }
}
