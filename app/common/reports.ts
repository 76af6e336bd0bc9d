import * as z from 'zod';

/**
 * An error report (code ERR_*), or an event the backend must hear of as reliably (code EVT_*: an
 * update that succeeded), as the agent sends it to the backend (`POST /reports`, JSON) and buffers it in
 * `error_reports.jsonl` while the backend is unreachable. Both ends validate with this schema. A
 * report never carries a secret: context values are short scalars chosen by the code that reports.
 */
export const REPORT_MAX_BYTES = 16 * 1024;

const scalar = z.union([z.string().max(2_000), z.number(), z.boolean(), z.null()]);

export const ErrorReport = z
  .object({
    /** Random UUID: the backend de-duplicates on it, so a report sent twice is stored once. */
    id: z.uuid(),
    /** ISO 8601, when it happened. */
    time: z.iso.datetime({ offset: true }),
    /** The agent's stable id (also used for staged rollout). */
    agent_id: z.string().min(1).max(100),
    agent_version: z.string().min(1).max(100),
    /** The agent's state when it happened. */
    state: z.string().min(1).max(100),
    /** A stable code, e.g. ERR_UPDATE_VERIFY, or EVT_UPDATE_SUCCEEDED for an event. */
    code: z.string().regex(/^(ERR|EVT)_[A-Z0-9_]+$/),
    message: z.string().min(1).max(2_000),
    context: z.record(z.string().max(100), scalar).refine((c) => Object.keys(c).length <= 50, 'at most 50 context entries'),
  })
  .strict();
export type ErrorReport = z.infer<typeof ErrorReport>;

/** The backend's answer to `POST /reports`: accepted (stored now) or a duplicate (stored before). */
export const ReportAck = z.object({ accepted: z.literal(true), duplicate: z.boolean() }).strict();
export type ReportAck = z.infer<typeof ReportAck>;
