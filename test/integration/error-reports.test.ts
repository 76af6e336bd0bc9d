import type { ReportCode } from '../../app/common/codes.js';
import { testCode } from '../helpers/report-codes.js';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import axios from 'axios';
import { ErrorReport, REPORT_MAX_BYTES } from '../../app/common/reports.js';
import { DROPS_KEY, ErrorReporter, type ErrorReporterOptions } from '../../app/main/core/error-reports.js';
import { HttpReportSender, type ReportSender, ReportSendError } from '../../app/main/core/report-sender.js';
import { bufferedReports, logOf } from '../helpers/agent.js';
import { type Fault, FaultProxy } from '../helpers/fault-proxy.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { DIST, tempDir } from '../helpers/paths.js';
import { Child, startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab } from '../helpers/release-lab.js';
import { V1, V2 } from '../helpers/update-lab.js';
import { until } from '../helpers/wait.js';

/**
 * A stand-in for outpost-server's `POST /reports` until the reference server (server/) exists. It
 * keeps to the contract in app/common/reports.ts: 202 with a ReportAck, de-duplication by id, 400 for
 * a body that is not an ErrorReport, 413 over REPORT_MAX_BYTES. Switches for the tests: refuse
 * chosen ids (400), answer 503 once N reports were taken, or be down (closed: nothing listens on its
 * port). Replace it with the real server once server/ lands.
 */
class StandInBackend {
  /** Reports stored, in arrival order. */
  readonly stored: ErrorReport[] = [];
  /** The id of every well-formed POST, in order (stored, duplicate, refused or failed). */
  readonly requests: string[] = [];
  /** Every request body as received, to look for secrets. */
  readonly bodies: string[] = [];
  readonly refuseIds = new Set<string>();
  /** Called with each well-formed report as it arrives, before it is answered. */
  onReceive: (report: ErrorReport) => void = () => {};
  /** Answer 503 once this many reports were taken (stored or duplicate). */
  failAfter = Number.POSITIVE_INFINITY;
  readonly #ids = new Set<string>();
  #taken = 0;
  #server: http.Server | null = null;
  port = 0;

  static async start(port = 0): Promise<StandInBackend> {
    const backend = new StandInBackend();
    await backend.up(port);
    return backend;
  }

  /** With a trailing slash, as an admin might write backend.url. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Pretend the backend already stored this report (an earlier send whose answer was lost). */
  had(id: string): void {
    this.#ids.add(id);
  }

  async up(port = this.port): Promise<void> {
    const server = http.createServer((request, response) => this.#handle(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async down(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const answer = (status: number, body: object) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (request.method !== 'POST' || request.url !== '/reports') {
      answer(404, { error: 'not found' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= REPORT_MAX_BYTES) chunks.push(chunk);
    });
    request.on('end', () => {
      if (size > REPORT_MAX_BYTES) return answer(413, { error: 'report too large' });
      const text = Buffer.concat(chunks).toString('utf8');
      this.bodies.push(text);
      let parsed: ReturnType<typeof ErrorReport.safeParse>;
      try {
        parsed = ErrorReport.safeParse(JSON.parse(text));
      } catch {
        return answer(400, { error: 'body is not JSON' });
      }
      if (!parsed.success) return answer(400, { error: `not an error report: ${parsed.error.issues[0]?.message}` });
      const report = parsed.data;
      this.requests.push(report.id);
      this.onReceive(report);
      if (this.#taken >= this.failAfter) return answer(503, { error: 'unavailable' });
      if (this.refuseIds.has(report.id)) return answer(400, { error: 'refused by the stand-in backend' });
      this.#taken++;
      if (this.#ids.has(report.id)) return answer(202, { accepted: true, duplicate: true });
      this.#ids.add(report.id);
      this.stored.push(report);
      return answer(202, { accepted: true, duplicate: false });
    });
  }
}

const IDENTITY = { agent_id: 'agent-test', agent_version: '1.2.3', state: 'IDLE' };

function sender(url: string, timeoutMs = 2_000): HttpReportSender {
  return new HttpReportSender({ baseUrl: url, timeoutMs, userAgent: 'outpost-test/1' });
}

function makeReporter(file: string, send: ReportSender, extra: Partial<ErrorReporterOptions> = {}) {
  const log = memoryLogger();
  const reporter = new ErrorReporter({ file, identity: () => IDENTITY, send, log, now: () => new Date(), ...extra });
  return { reporter, lines: log.lines };
}

/** A port on loopback with nothing listening (taken, then given back). */
async function deadPort(): Promise<number> {
  const backend = await StandInBackend.start();
  await backend.down();
  return backend.port;
}

async function backendFor(t: TestContext, port = 0): Promise<StandInBackend> {
  const backend = await StandInBackend.start(port);
  t.after(() => backend.down());
  return backend;
}

/** The reports in the buffer file, checking that every line is a complete, valid report. */
function dropsFile(dir: string): { unreported: number } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'error_reports.dropped'), 'utf8'));
}

function matching(lines: readonly string[], pattern: RegExp): string[] {
  return lines.filter((line) => pattern.test(line));
}

test('backend down: each report is an fsynced line, bounded by count; a full buffer drops its oldest tenth in one rewrite; the drop count reaches the backend later', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const port = await deadPort();
  // Which files get fsynced: the buffer itself for an append, a temp file for an atomic rewrite.
  const synced: string[] = [];
  const fsync = fs.fsyncSync.bind(fs);
  t.mock.method(fs, 'fsyncSync', (fd: number) => {
    synced.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    fsync(fd);
  });
  const { reporter, lines } = makeReporter(file, sender(`http://127.0.0.1:${port}`), { limits: { maxBytes: 1024 * 1024, maxCount: 20 } });

  // All at once: the reporter serialises them, in call order.
  await Promise.all(Array.from({ length: 50 }, (_, i) => reporter.report(testCode('ERR_TEST_DOWN'), `report ${i}`, { i })));
  t.mock.restoreAll();
  // report() resolves once the report is on disk; the send it started fails after that.
  assert.deepEqual(await reporter.flush(), { sent: 0, dropped: 0, remaining: 20 });

  const buffered = bufferedReports(file);
  assert.deepEqual(
    buffered.map((r) => r.message),
    Array.from({ length: 20 }, (_, i) => `report ${30 + i}`),
  );
  assert.equal(reporter.pending, 20);
  // 20 appends fill it; then each rewrite drops 3 (down to 17, a tenth free after the new one), and 2 appends follow.
  assert.equal(synced.filter((p) => p === file).length, 20 + 10 * 2, 'each append fsynced the buffer');
  assert.equal(synced.filter((p) => p.startsWith(`${file}.tmp-`)).length, 10, 'one rewrite per 3 reports into the full buffer, not one per report');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(matching(lines, /^warn .*backend unreachable.*connection refused/).length, 1, 'the outage is logged once');
  assert.equal(matching(lines, /^warn .*buffer full.*dropped the 3 oldest/).length, 10, 'each drop is logged once');
  assert.equal(reporter.unreportedDrops, 30);
  assert.deepEqual(dropsFile(dir), { unreported: 30 });

  // The backend comes back; a restarted agent (a new reporter) still knows about the drops.
  const backend = await backendFor(t, port);
  const restarted = makeReporter(file, sender(backend.url));
  assert.equal(restarted.reporter.pending, 20);
  assert.equal(restarted.reporter.unreportedDrops, 30);
  assert.deepEqual(await restarted.reporter.flush(), { sent: 20, dropped: 0, remaining: 0 });
  assert.deepEqual(
    backend.stored.map((r) => r.message),
    buffered.map((r) => r.message),
  );
  assert.equal(backend.stored[0]?.context[DROPS_KEY], 30, 'the first delivered report carries the drop count');
  assert.ok(backend.stored.slice(1).every((r) => !(DROPS_KEY in r.context)));
  assert.deepEqual(dropsFile(dir), { unreported: 0 });
  assert.equal(restarted.reporter.unreportedDrops, 0);
  assert.deepEqual(bufferedReports(file), []);

  await restarted.reporter.report(testCode('ERR_TEST_DOWN'), 'after the outage');
  await restarted.reporter.flush();
  assert.equal(backend.stored.length, 21);
  assert.deepEqual(backend.stored[20]?.context, {}, 'the drops were told once');
});

test('backend down: the buffer is bounded by bytes, oldest first; a report bigger than the buffer is dropped alone', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const port = await deadPort();
  const maxBytes = 8 * 1024;
  const { reporter, lines } = makeReporter(file, sender(`http://127.0.0.1:${port}`), { limits: { maxBytes, maxCount: 1_000 } });
  for (let i = 0; i < 30; i++) await reporter.report(testCode('ERR_TEST_BYTES'), `report ${i}`, { pad: 'x'.repeat(1_000) });

  const buffered = bufferedReports(file);
  assert.ok(fs.statSync(file).size <= maxBytes, `${fs.statSync(file).size} bytes`);
  assert.ok(buffered.length >= 5 && buffered.length < 8, `${buffered.length} reports kept`);
  assert.deepEqual(
    buffered.map((r) => r.message),
    Array.from({ length: buffered.length }, (_, i) => `report ${30 - buffered.length + i}`),
  );
  assert.equal(reporter.unreportedDrops, 30 - buffered.length);

  await reporter.report(testCode('ERR_TEST_BYTES'), 'too big', { a: 'y'.repeat(2_000), b: 'y'.repeat(2_000), c: 'y'.repeat(2_000), d: 'y'.repeat(2_000), e: 'y'.repeat(2_000) });
  assert.deepEqual(
    bufferedReports(file).map((r) => r.message),
    buffered.map((r) => r.message),
    'the older reports stay',
  );
  assert.equal(reporter.unreportedDrops, 31 - buffered.length);
  assert.equal(matching(lines, /^warn .*dropped 1 error report\(s\): a \d+-byte report does not fit/).length, 1);
});

test('backend back: flush delivers each report once, in order; a duplicate is removed too; a refused one is dropped and logged', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const port = await deadPort();
  const { reporter, lines } = makeReporter(file, sender(`http://127.0.0.1:${port}`));
  for (let i = 0; i < 10; i++) await reporter.report(testCode('ERR_TEST_FLUSH'), `report ${i}`, { i });
  const ids = bufferedReports(file).map((r) => r.id);
  assert.equal(ids.length, 10);
  assert.deepEqual(await reporter.flush(), { sent: 0, dropped: 0, remaining: 10 }, 'the sends report() started end before the backend comes up');

  const backend = await backendFor(t, port);
  const duplicate = ids[3] as string;
  const refused = ids[6] as string;
  backend.had(duplicate);
  backend.refuseIds.add(refused);
  assert.deepEqual(await reporter.flush(), { sent: 9, dropped: 1, remaining: 0 });
  assert.deepEqual(backend.requests, ids, 'sent oldest first, one each');
  assert.deepEqual(
    backend.stored.map((r) => r.id),
    ids.filter((id) => id !== duplicate && id !== refused),
  );
  const refusals = matching(lines, /refused error report/);
  assert.equal(refusals.length, 1);
  assert.match(refusals[0] as string, new RegExp(`${refused}.*HTTP 400: refused by the stand-in backend`));
  assert.match(lines.join('\n'), /backend reachable again/);
  assert.deepEqual(bufferedReports(file), []);
  assert.equal(reporter.pending, 0);

  assert.deepEqual(await reporter.flush(), { sent: 0, dropped: 0, remaining: 0 });
  assert.equal(backend.requests.length, 10, 'nothing more was sent');
});

test('a flush that fails half-way (503 after 2 reports) keeps exactly the unsent ones', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const port = await deadPort();
  const { reporter, lines } = makeReporter(file, sender(`http://127.0.0.1:${port}`));
  for (let i = 0; i < 6; i++) await reporter.report(testCode('ERR_TEST_HALF'), `report ${i}`);
  const ids = bufferedReports(file).map((r) => r.id);
  assert.deepEqual(await reporter.flush(), { sent: 0, dropped: 0, remaining: 6 }, 'the sends report() started end before the backend comes up');

  const backend = await backendFor(t, port);
  backend.failAfter = 2;
  assert.deepEqual(await reporter.flush(), { sent: 2, dropped: 0, remaining: 4 });
  assert.equal(backend.requests.length, 3, 'stopped at the first 503');
  assert.deepEqual(
    bufferedReports(file).map((r) => r.id),
    ids.slice(2),
  );
  assert.match(lines.join('\n'), /HTTP 503/);

  backend.failAfter = Number.POSITIVE_INFINITY;
  assert.deepEqual(await reporter.flush(), { sent: 4, dropped: 0, remaining: 0 });
  assert.deepEqual(
    backend.stored.map((r) => r.id),
    ids,
  );
});

test('report() and flush() may overlap: nothing is lost, nothing is sent twice', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const port = await deadPort();
  const { reporter } = makeReporter(file, sender(`http://127.0.0.1:${port}`));
  for (let i = 0; i < 10; i++) await reporter.report(testCode('ERR_TEST_OVERLAP'), `buffered ${i}`);
  const backend = await backendFor(t, port);
  const calls: Promise<unknown>[] = [reporter.flush()];
  for (let i = 0; i < 5; i++) calls.push(reporter.report(testCode('ERR_TEST_OVERLAP'), `live ${i}`), reporter.flush());
  await Promise.all(calls);
  assert.equal(backend.stored.length, 15);
  assert.equal(new Set(backend.requests).size, backend.requests.length, 'no report was sent twice');
  assert.equal(reporter.pending, 0);
});

test('write-ahead: each report is in the buffer file while the backend receives it, and the file is emptied in place (same inode) once it is taken', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const backend = await backendFor(t);
  const onDiskAtReceipt: boolean[] = [];
  backend.onReceive = (report) => onDiskAtReceipt.push(bufferedReports(file).some((r) => r.id === report.id));
  const { reporter } = makeReporter(file, sender(backend.url));
  await reporter.report(testCode('ERR_TEST_AHEAD'), 'first');
  const inode = fs.statSync(file).ino;
  for (let i = 0; i < 4; i++) await reporter.report(testCode('ERR_TEST_AHEAD'), `more ${i}`);
  assert.equal((await reporter.flush()).remaining, 0);
  assert.equal(backend.stored.length, 5);
  assert.deepEqual(onDiskAtReceipt, [true, true, true, true, true]);
  assert.equal(fs.readFileSync(file, 'utf8'), '');
  assert.equal(fs.statSync(file).ino, inode, 'emptied, not replaced');
});

test('a full buffer takes new reports as appends: one rewrite per 11 reports (limit 100), never over the limit; a flush removes delivered reports every 100, not one by one', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const port = await deadPort();
  const { reporter } = makeReporter(file, sender(`http://127.0.0.1:${port}`), { limits: { maxBytes: 1024 * 1024, maxCount: 100 } });
  let rewrites = 0;
  let previous: fs.Stats | undefined;
  for (let i = 0; i < 400; i++) {
    await reporter.report(testCode('ERR_TEST_FULL'), `report ${i}`, { i });
    const stat = fs.statSync(file);
    const lines = bufferedReports(file).length;
    assert.ok(lines <= 100, `${lines} lines after report ${i}`);
    if (previous && stat.ino !== previous.ino) rewrites++;
    else if (previous) assert.ok(stat.size > previous.size, `report ${i} was appended to the same file`);
    previous = stat;
  }
  // 100 appends fill it; each rewrite leaves 90 lines (the new one included), then 10 appends follow.
  assert.equal(rewrites, Math.ceil(300 / 11));
  const kept = bufferedReports(file);
  assert.equal(reporter.unreportedDrops + kept.length, 400, 'every report is buffered or counted as dropped');
  assert.equal(kept.at(-1)?.message, 'report 399');

  const backend = await backendFor(t, port);
  const inodes = new Set<number>();
  backend.onReceive = () => inodes.add(fs.statSync(file).ino);
  assert.deepEqual(await reporter.flush(), { sent: kept.length, dropped: 0, remaining: 0 });
  assert.ok(inodes.size <= Math.ceil(kept.length / 100), `${inodes.size} versions of the file during the flush of ${kept.length}`);
  assert.equal(fs.readFileSync(file, 'utf8'), '');
});

test('close(300): the send in flight to a backend that never answers is cut within the limit, the report stays on disk; after it, reports are only written and flush sends nothing', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const received: string[] = [];
  const hanging = http.createServer((request) => {
    received.push(request.url ?? '');
    request.resume(); // and never answer
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    hanging.closeAllConnections();
    hanging.close();
  });
  const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  const { reporter, lines } = makeReporter(file, sender(url, 10_000));
  await reporter.report(testCode('ERR_TEST_CLOSE'), 'in flight at shutdown');
  await until('the POST at the backend', () => received.length === 1);

  const started = Date.now();
  await reporter.close(300);
  const tookMs = Date.now() - started;
  assert.ok(tookMs >= 290 && tookMs < 2_000, `close took ${tookMs} ms`);
  assert.deepEqual(
    bufferedReports(file).map((r) => r.message),
    ['in flight at shutdown'],
  );
  assert.equal(reporter.pending, 1);
  assert.equal(matching(lines, /^warn .*stopped sending error reports: the 300 ms allowed at shutdown ran out/).length, 1);
  assert.equal(matching(lines, /^info .*1 error report\(s\) stay buffered for the next start/).length, 1);

  await reporter.report(testCode('ERR_TEST_CLOSE'), 'after close');
  assert.deepEqual(await reporter.flush(), { sent: 0, dropped: 0, remaining: 2 });
  assert.equal(received.length, 1, 'nothing was sent after close');
  assert.deepEqual(
    bufferedReports(file).map((r) => r.message),
    ['in flight at shutdown', 'after close'],
  );
});

test('SIGKILL while appending: every complete line is a report; a torn last line is skipped and logged; flush delivers the rest', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const port = await deadPort();
  const fixture = path.join(DIST, 'test', 'fixtures', 'report-appender.js');
  // The count limit is reached in the later rounds, so kills land in appends and in rewrites.
  const rounds = 6;
  const seen = { tornTails: 0, tempFiles: 0 };
  for (let round = 0; round < rounds; round++) {
    const appender = new Child(process.execPath, [fixture, file, String(port), String(round), '300'], process.env);
    const killAt = 20 + Math.floor(Math.random() * 150);
    await appender.waitFor(new RegExp(`appended ${killAt}\n`), 20_000);
    await sleep(Math.random() * 10);
    appender.kill('SIGKILL');
    const finished = await appender.finish();
    assert.equal(finished.signal, 'SIGKILL');
    assert.doesNotMatch(finished.stderr, /error/, 'the appender logged no error');

    const text = fs.readFileSync(file, 'utf8');
    const complete = text.split('\n');
    const tail = complete.pop();
    for (const line of complete) assert.ok(ErrorReport.safeParse(JSON.parse(line)).success, line);
    if (tail !== '') seen.tornTails++;
    seen.tempFiles += fs.readdirSync(dir).filter((name) => name.includes('.tmp-')).length;
    const { reporter, lines } = makeReporter(file, sender(`http://127.0.0.1:${port}`), { limits: { maxBytes: 1024 * 1024, maxCount: 300 } });
    assert.equal(reporter.pending, complete.length);
    assert.equal(matching(lines, /torn by an interrupted write/).length, tail === '' ? 0 : 1);
    assert.deepEqual(
      fs.readdirSync(dir).filter((name) => name.includes('.tmp-')),
      [],
      'temp files of an interrupted rewrite are removed',
    );
  }

  t.diagnostic(`kills that tore a line: ${seen.tornTails}/${rounds}; temp files left by kills during a rewrite: ${seen.tempFiles}`);

  // A kill rarely lands inside the write of one small line: tear the last line by hand too.
  const text = fs.readFileSync(file, 'utf8');
  const whole = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  const kept = whole.split('\n').filter((line) => line !== '');
  const lastLine = kept.pop() as string;
  fs.writeFileSync(file, `${kept.join('\n')}\n${lastLine.slice(0, lastLine.length >> 1)}`);

  const backend = await backendFor(t, port);
  const drops = JSON.parse(fs.readFileSync(path.join(dir, 'error_reports.dropped'), 'utf8')).unreported as number;
  assert.ok(drops > 0, 'the later rounds dropped old reports');
  const { reporter, lines } = makeReporter(file, sender(backend.url), { limits: { maxBytes: 1024 * 1024, maxCount: 300 } });
  assert.equal(reporter.pending, kept.length);
  const skipped = matching(lines, /^warn .*skipped 1 line\(s\).*torn by an interrupted write/);
  assert.equal(skipped.length, 1);
  assert.match(skipped[0] as string, new RegExp(`line ${kept.length + 1}\\b`));

  assert.deepEqual(await reporter.flush(), { sent: kept.length, dropped: 0, remaining: 0 });
  assert.deepEqual(
    backend.stored.map((r) => r.id),
    kept.map((line) => (JSON.parse(line) as ErrorReport).id),
    'each complete report delivered once, in order',
  );
  assert.equal(backend.stored[0]?.context[DROPS_KEY], drops);
  const order = backend.stored.map((r) => [r.context.round as number, r.context.n as number] as const);
  for (let i = 1; i < order.length; i++) {
    const [a, b] = [order[i - 1] as readonly [number, number], order[i] as readonly [number, number]];
    assert.ok(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `oldest first: ${a} before ${b}`);
  }
  assert.equal(fs.readFileSync(file, 'utf8'), '');
});

test('damaged lines are skipped and logged once with their numbers, never sent, and gone at the next rewrite; an append never glues onto a torn line', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const port = await deadPort();
  const first = makeReporter(file, sender(`http://127.0.0.1:${port}`));
  for (let i = 0; i < 3; i++) await first.reporter.report(testCode('ERR_TEST_DAMAGE'), `report ${i}`);
  const [a, b, c] = fs.readFileSync(file, 'utf8').split('\n') as [string, string, string];
  fs.writeFileSync(file, `${a}\nnot json\n${b}\n{"id":"not a report"}\n${c}\n${c.slice(0, 40)}`);

  const second = makeReporter(file, sender(`http://127.0.0.1:${port}`));
  assert.equal(second.reporter.pending, 3);
  const warned = matching(second.lines, /not valid error reports/);
  assert.equal(warned.length, 1);
  assert.match(warned[0] as string, /skipped 3 line\(s\).*line 2, 4, 6; line 6 was torn/);

  await second.reporter.report(testCode('ERR_TEST_DAMAGE'), 'after the damage');
  assert.deepEqual(await second.reporter.flush(), { sent: 0, dropped: 0, remaining: 4 }, 'its send failed: the backend is down');
  assert.deepEqual(
    bufferedReports(file).map((r) => r.message),
    ['report 0', 'report 1', 'report 2', 'after the damage'],
    'the append rewrote the file without the damage',
  );

  const backend = await backendFor(t, port);
  assert.deepEqual(await second.reporter.flush(), { sent: 4, dropped: 0, remaining: 0 });
  assert.equal(backend.stored.length, 4);
  assert.equal(backend.bodies.length, 4, 'no damaged line was sent');
});

test('no secret in a report: context keys that may hold one are left out, and that is logged', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'error_reports.jsonl');
  const backend = await backendFor(t);
  const secrets = {
    ipc_secret: 'S3CRET-ipc',
    token: 'S3CRET-token',
    api_key: 'S3CRET-key',
    Authorization: 'S3CRET-bearer',
    session_cookie: 'S3CRET-cookie',
    client_proof: 'S3CRET-proof',
    nonce: 'S3CRET-nonce',
    db_password: 'S3CRET-password',
  };
  const { reporter, lines } = makeReporter(file, sender(backend.url));
  await reporter.report(testCode('ERR_TEST_SECRET'), 'IPC authentication failed', { ...secrets, attempts: 3, endpoint: '/run/outpost.sock', ok: false, peer: null, absent: undefined });
  await reporter.flush();
  assert.equal(backend.stored.length, 1);
  assert.deepEqual(backend.stored[0]?.context, { attempts: 3, endpoint: '/run/outpost.sock', ok: false, peer: null });
  const scrub = matching(lines, /left out context keys that may hold secrets/);
  assert.equal(scrub.length, 1);
  for (const key of Object.keys(secrets)) assert.match(scrub[0] as string, new RegExp(key));

  // The same when the report goes to the buffer instead.
  await backend.down();
  await reporter.report(testCode('ERR_TEST_SECRET'), 'buffered', secrets);
  await reporter.flush();
  assert.equal(reporter.pending, 1);
  const everything = [...backend.bodies, fs.readFileSync(file, 'utf8'), ...lines].join('\n');
  assert.doesNotMatch(everything, /S3CRET/);
});

test('report() never rejects: unwritable buffer, identity that throws, a report that breaks its schema, a sender that throws at once', async (t) => {
  const dir = tempDir(t);
  const notAFolder = path.join(dir, 'plain-file');
  fs.writeFileSync(notAFolder, 'x');
  const file = path.join(notAFolder, 'error_reports.jsonl');
  const port = await deadPort();

  // The parent of the buffer is a file (as root, a read-only folder would not stop the write).
  const unwritable = makeReporter(file, sender(`http://127.0.0.1:${port}`));
  await assert.doesNotReject(unwritable.reporter.report(testCode('ERR_TEST_NEVER'), 'nowhere to go', { n: 1 }));
  assert.equal(unwritable.reporter.pending, 0);
  assert.match(unwritable.lines.join('\n'), /cannot read the error report buffer .*ENOTDIR/);
  assert.match(unwritable.lines.join('\n'), /^error .*error report .* \(ERR_TEST_NEVER\) lost: /m);
  assert.deepEqual(await unwritable.reporter.flush(), { sent: 0, dropped: 0, remaining: 0 });

  // Same folder problem, but the buffer could be read (it is not there) and only the write fails.
  const blocked = path.join(dir, 'blocked');
  fs.mkdirSync(blocked);
  const later = makeReporter(path.join(blocked, 'error_reports.jsonl'), sender(`http://127.0.0.1:${port}`));
  fs.rmSync(blocked, { recursive: true });
  fs.writeFileSync(blocked, 'now a file');
  await assert.doesNotReject(later.reporter.report(testCode('ERR_TEST_NEVER'), 'write fails'));
  assert.match(later.lines.join('\n'), /lost: cannot write .*ENOTDIR/);

  const backend = await backendFor(t);
  const good = path.join(dir, 'error_reports.jsonl');
  const throwing = makeReporter(good, sender(backend.url), {
    identity: () => {
      throw new Error('state machine not ready');
    },
  });
  await assert.doesNotReject(throwing.reporter.report(testCode('ERR_TEST_NEVER'), 'identity fails'));
  assert.match(throwing.lines.join('\n'), /not made: state machine not ready/);

  const { reporter, lines } = makeReporter(good, sender(backend.url));
  // What an untyped caller (JavaScript, a plugin) could pass: checked at run time too.
  await assert.doesNotReject(reporter.report('not-a-code' as ReportCode, 'bad code'));
  await assert.doesNotReject(reporter.report(testCode('ERR_TEST_NEVER'), ''));
  assert.equal(matching(lines, /^error .*does not match the report schema/).length, 2);
  assert.equal(backend.requests.length, 0, 'an invalid report is never sent');

  const rude = makeReporter(good, {
    send: () => {
      throw new Error('thrown before any promise');
    },
  });
  await assert.doesNotReject(rude.reporter.report(testCode('ERR_TEST_NEVER'), 'sender throws'));
  assert.equal(rude.reporter.pending, 1, 'buffered: a throw is a retryable failure');
});

test('HttpReportSender: outcomes, retryable failures thrown with what happened, trailing slash and path prefix', async (t) => {
  let handler: http.RequestListener = (_request, response) => response.end();
  const paths: string[] = [];
  const server = http.createServer((request, response) => {
    paths.push(request.url ?? '');
    request.resume();
    request.on('end', () => handler(request, response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const report = ErrorReport.parse({
    id: randomUUID(),
    time: new Date().toISOString(),
    ...IDENTITY,
    code: testCode('ERR_TEST_SENDER'),
    message: 'hello',
    context: {},
  });
  const reply = (status: number, body: string) => {
    handler = (_request, response) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(body);
    };
  };

  reply(202, '{"accepted":true,"duplicate":false}');
  assert.deepEqual(await sender(`${base}/`).send(report), { outcome: 'accepted' });
  assert.deepEqual(await sender(`${base}/api//`).send(report), { outcome: 'accepted' });
  assert.deepEqual(paths, ['/reports', '/api/reports']);
  reply(200, '{"accepted":true,"duplicate":true}');
  assert.deepEqual(await sender(base).send(report), { outcome: 'duplicate' });
  reply(422, '{"error":"context too large"}');
  assert.deepEqual(await sender(base).send(report), { outcome: 'refused', reason: 'HTTP 422: context too large' });
  reply(503, 'maintenance');
  await assert.rejects(
    sender(base).send(report),
    (error: unknown) =>
      error instanceof ReportSendError && error.code === 'ERR_REPORT_SEND_FAILED' && /not delivered to .*\/reports: HTTP 503 \(maintenance\)/.test(error.message),
  );
  reply(429, '{}');
  await assert.rejects(sender(base).send(report), /HTTP 429/);
  reply(202, '{"ok":true}');
  await assert.rejects(sender(base).send(report), /invalid acknowledgement/);
  reply(202, 'x'.repeat(64 * 1024));
  await assert.rejects(sender(base).send(report), /maxContentLength/);

  handler = () => {}; // never answers
  const started = Date.now();
  await assert.rejects(sender(base, 300).send(report), /no answer within 300 ms \(timeout\)/);
  assert.ok(Date.now() - started < 2_000);

  await assert.rejects(sender(`http://127.0.0.1:${await deadPort()}`).send(report), /connection refused/);
  assert.throws(() => sender('ftp://example.test/'), /must be http or https/);
});

test('HttpReportSender goes direct to a loopback backend even with HTTP_PROXY set, and through the proxy otherwise', async (t) => {
  if (process.env.NODE_USE_ENV_PROXY) return t.skip('Node handles proxies itself here (NODE_USE_ENV_PROXY)');
  const backend = await backendFor(t);
  const proxied: string[] = [];
  // A forward proxy that plays the backend for any host it is asked for.
  const proxy = http.createServer((request, response) => {
    proxied.push(request.url ?? '');
    request.resume();
    response.writeHead(202, { 'content-type': 'application/json' });
    response.end('{"accepted":true,"duplicate":false}');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const saved = { ...process.env };
  t.after(() => {
    for (const name of ['HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy']) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    proxy.closeAllConnections();
    proxy.close();
  });
  process.env.HTTP_PROXY = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  delete process.env.http_proxy;
  delete process.env.NO_PROXY;
  delete process.env.no_proxy;
  const report = () =>
    ErrorReport.parse({ id: randomUUID(), time: new Date().toISOString(), ...IDENTITY, code: testCode('ERR_TEST_PROXY'), message: 'm', context: {} });

  // What plain axios does, and why the sender has a rule for loopback.
  await axios.post(`${backend.url}reports`, report(), { validateStatus: () => true });
  assert.equal(proxied.length, 1, 'axios alone sends a loopback request to the proxy');

  for (const url of [backend.url, `http://localhost:${backend.port}`]) {
    assert.deepEqual(await sender(url).send(report()), { outcome: 'accepted' }, url);
  }
  assert.equal(backend.stored.length, 2);
  assert.equal(proxied.length, 1, 'the sender went direct');

  // A backend elsewhere is reached through the proxy (no name is resolved: the proxy answers).
  assert.deepEqual(await sender('http://reports.outpost.invalid/base/').send(report()), { outcome: 'accepted' });
  assert.deepEqual(proxied.slice(1), ['http://reports.outpost.invalid/base/reports']);
});

/**
 * The real reference server, a FaultProxy in front of it for the agent's HTTP (the WebSocket goes
 * direct), 1.1.0 published over the installed 1.0.0, and a disk "too small" for it: every update
 * check fails with ERR_UPDATE_DISK_SPACE, whose report is the one the faults hit.
 */
async function reportingAgentLab(t: TestContext, fault: Fault) {
  const lab = new ReleaseLab(t);
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  lab.publish(lab.app('1.1.0', V2), '1.1.0');
  await lab.startServer();
  const proxy = await FaultProxy.start(lab.url);
  t.after(() => proxy.close());
  proxy.once(/^\/reports$/, fault);
  const home = lab.home({ url: proxy.url, wsUrl: `${lab.url.replace('http', 'ws')}/ws`, update: { min_free_mb: 1_000_000_000 } });
  const buffer = path.join(home, 'error_reports.jsonl');
  const start = async () => {
    const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
    t.after(() => agent.kill('SIGKILL'));
    return agent;
  };
  const reportPosts = () => proxy.seen.filter((r) => r.path === '/reports').length;
  return { lab, home, buffer, start, reportPosts };
}

async function sigkill(agent: Child): Promise<void> {
  agent.kill('SIGKILL');
  assert.equal((await agent.finish()).signal, 'SIGKILL');
}

test('real agent SIGKILLed while its report is on its way up (the POST trickling through a proxy): the report was on disk, and the next start delivers it once', async (t) => {
  const { lab, buffer, start, reportPosts } = await reportingAgentLab(t, { kind: 'stall-request', afterBytes: 100 });
  const first = await start();
  await until('the report POST held in the proxy', () => reportPosts() === 1);
  await sigkill(first);

  const onDisk = bufferedReports(buffer);
  assert.equal(onDisk.length, 1, 'the report in flight is in error_reports.jsonl');
  const [report] = onDisk as [ErrorReport];
  assert.equal(report.code, 'ERR_UPDATE_DISK_SPACE');
  assert.equal(lab.reports().length, 0, 'the server never got the whole request');

  const second = await start();
  await until('the report at the server', () => lab.reports().some((r) => r.id === report.id));
  await until('the report gone from the buffer', () => !bufferedReports(buffer).some((r) => r.id === report.id));
  assert.equal(lab.reports().filter((r) => r.id === report.id).length, 1, 'stored once');
  second.kill('SIGTERM');
  assert.equal((await second.finish()).code, 0);
});

test('real agent SIGKILLed after the server stored its report but before the answer came: the next start sends it again, the server keeps one copy, the buffer lets it go', async (t) => {
  const { lab, buffer, start, reportPosts } = await reportingAgentLab(t, { kind: 'stall', afterBytes: 0 });
  const first = await start();
  const stored = await until('the report at the server', () => lab.reports()[0]);
  await sigkill(first);
  assert.deepEqual(
    bufferedReports(buffer).map((r) => r.id),
    [stored.id],
    'the unconfirmed report stays on disk',
  );

  const second = await start();
  await until('the report gone from the buffer', () => !bufferedReports(buffer).some((r) => r.id === stored.id));
  assert.ok(reportPosts() >= 2, 'sent again after the restart');
  assert.equal(lab.reports().filter((r) => r.id === stored.id).length, 1, 'the server de-duplicated it');
  second.kill('SIGTERM');
  assert.equal((await second.finish()).code, 0);
});

test('real agent stopped (SIGTERM) while its report hangs on a backend that never answers: it exits 0 after its 2 s flush limit, well before the sender\'s own 10 s, the report kept on disk', async (t) => {
  const { home, buffer, start, reportPosts } = await reportingAgentLab(t, { kind: 'stall-request', afterBytes: 0 });
  const agent = await start();
  await until('the report POST held in the proxy', () => reportPosts() === 1);
  const asked = Date.now();
  agent.kill('SIGTERM');
  const finished = await agent.finish();
  const tookMs = Date.now() - asked;
  t.diagnostic(`shutdown took ${tookMs} ms`);
  assert.equal(finished.code, 0, finished.stderr);
  // The flush limit, plus room for a loaded machine's exit: what matters is not waiting for the sender's 10 s.
  assert.ok(tookMs < 6_000, `shutdown took ${tookMs} ms`);
  assert.deepEqual(
    bufferedReports(buffer).map((r) => r.code),
    ['ERR_UPDATE_DISK_SPACE'],
  );
  assert.match(logOf(home), /1 error report\(s\) stay buffered for the next start/);
});
