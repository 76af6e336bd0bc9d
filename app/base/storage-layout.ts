import path from 'node:path';

/**
 * The one locator of the storage folder's files (CONTRACT.md): every process (agent, updater, tests'
 * helpers) derives a path from here, never by joining names itself.
 */
export interface StoragePaths {
  readonly root: string;
  readonly config: string;
  readonly logs: string;
  readonly lock: string;
  readonly errorReports: string;
  readonly agentId: string;
  /** The organisation's enrollment secret and the agent's token, when not in the credential store (core/backend/kept-secret.ts). */
  readonly enrollmentSecret: string;
  readonly agentToken: string;
  readonly updates: UpdatePaths;
}

/** `updates/`: downloads, staged releases, and the files between the agent and the updater (common/update-files.ts). */
export interface UpdatePaths {
  readonly dir: string;
  /** The TUF metadata cache. */
  readonly metadata: string;
  /** Verified chunks of a release being downloaded, each named by the SHA-256 of its bytes. */
  readonly chunks: string;
  readonly staged: string;
  readonly failedVersions: string;
  readonly lastUpdate: string;
  /** What the last download cost (common/update-files.ts DownloadCost). */
  readonly lastDownload: string;
  /** The last job handed to the updater. */
  readonly job: string;
  /** The complete tree of a staged version (stage.ts builds it beside, in `<tree>.partial`). */
  stagedTree(version: string): string;
  journal(jobId: string): string;
  readyFile(jobId: string): string;
  healthRecord(jobId: string): string;
  recoveryLock(jobId: string): string;
  /** The copy of the updater a job runs from (never from the installation it replaces). */
  updaterCopy(jobId: string): string;
}

export function storagePaths(root: string): StoragePaths {
  return {
    root,
    config: path.join(root, 'config.json'),
    logs: path.join(root, 'logs'),
    lock: path.join(root, 'agent.lock'),
    errorReports: path.join(root, 'error_reports.jsonl'),
    agentId: path.join(root, 'agent_id'),
    enrollmentSecret: path.join(root, 'enrollment.secret'),
    agentToken: path.join(root, 'agent.token'),
    updates: updatePaths(path.join(root, 'updates')),
  };
}

function updatePaths(dir: string): UpdatePaths {
  const file = (name: string) => path.join(dir, name);
  return {
    dir,
    metadata: file('metadata'),
    chunks: file('chunks'),
    staged: file('staged.json'),
    failedVersions: file('failed-versions.json'),
    lastUpdate: file('last-update.json'),
    lastDownload: file('last-download.json'),
    job: file('job.json'),
    stagedTree: (version) => file(version),
    journal: (jobId) => file(`journal-${jobId}.jsonl`),
    readyFile: (jobId) => file(`updater-${jobId}.ready`),
    healthRecord: (jobId) => file(`health-${jobId}.json`),
    recoveryLock: (jobId) => file(`recovery-${jobId}.lock`),
    updaterCopy: (jobId) => file(`updater-${jobId}`),
  };
}

/** A job's journal names are `journal-<id>.jsonl`: the id of one, or null for another file. */
export function journalJobId(name: string): string | null {
  return /^journal-(.+)\.jsonl$/.exec(name)?.[1] ?? null;
}
