import { createRequire } from 'node:module';
import { type CredentialStore, SECRET_SERVICE } from './platform.js';

type KeyringModule = typeof import('@napi-rs/keyring');

/**
 * The OS credential store through @napi-rs/keyring (keytar's maintained successor: prebuilt
 * binaries for every target inside its npm package, a synchronous API, works under plain Node and
 * Electron alike). The binding loads on first use: a per-machine agent never needs it, and a missing
 * binary is a store that does not answer (the caller falls back to a file), never a crash at start-up.
 */
export function keyringStore(name: string): CredentialStore {
  let keyring: KeyringModule | undefined;
  // Linux: the Secret Service only. The library's default falls back to the kernel keyring, which is
  // per login session and empty after a reboot: a `status` from another session would not find it.
  const entry = (account: string) => {
    keyring ??= createRequire(import.meta.url)('@napi-rs/keyring') as KeyringModule;
    return new keyring.Entry(SECRET_SERVICE, account, { linux: { store: 'secret-service' } });
  };
  return {
    name,
    get: (account) => entry(account).getPassword(),
    set: (account, value) => entry(account).setPassword(value),
    delete: (account) => entry(account).deletePassword(),
  };
}
