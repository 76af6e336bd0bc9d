/** The log's levels, most severe first: the agent's logger writes them and the diagnostics page filters by them. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
