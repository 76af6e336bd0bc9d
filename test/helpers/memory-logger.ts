import type { Logger } from '../../app/base/logger.js';

/** A real Logger that keeps its lines in memory, for tests that check what was logged. */
export function memoryLogger(lines: string[] = [], scope = ''): Logger & { lines: string[] } {
  const write = (level: string) => (message: string, fields?: object) => {
    lines.push(`${level} ${scope ? `[${scope}] ` : ''}${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
  };
  return {
    lines,
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    child: (s) => memoryLogger(lines, scope ? `${scope}.${s}` : s),
  };
}
