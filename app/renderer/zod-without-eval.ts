import { config } from 'zod';

/**
 * The page's CSP forbids eval, so zod must not compile parsers with `new Function`, nor even probe
 * whether it may (Chromium reports the probe as a violation though zod catches it). Schemas take
 * the setting when they are made, at import: main.ts imports this module before any other.
 */
config({ jitless: true });
