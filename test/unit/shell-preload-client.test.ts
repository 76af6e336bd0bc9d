import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApiCall, DiagnosticsApi } from '../../app/common/diagnostics.js';
import { dispatchApiCall } from '../../app/main/core/diagnostics/api-dispatch.js';
import { callText } from '../../app/main/shell/diagnostics-page.js';
import { diagnosticsClient } from '../../app/preload/diagnostics-client.js';

/** An API that answers the two simple methods and refuses the rest: the main side's dispatcher is real. */
const api: DiagnosticsApi = {
  read: () => Promise.reject(new Error('the agent is not reachable')),
  checkNow: async () => ({ ok: true, message: 'check started' }),
  openLogFolder: async () => ({ ok: false, message: 'no file manager' }),
  bundle: async () => ({ file_name: 'outpost-diagnostics.txt', text: 'state: IDLE' }),
};

test("the preload's API through the main process's dispatcher: numbered calls, checked answers", async () => {
  const sent: ApiCall[] = [];
  const client = diagnosticsClient((call) => {
    sent.push(call);
    // What ipcRenderer.invoke and the ipcMain handler do to a call, minus Electron.
    return dispatchApiCall(callText(structuredClone(call)), api);
  });
  assert.deepEqual(await client.checkNow(), { ok: true, message: 'check started' });
  assert.deepEqual(await client.openLogFolder(), { ok: false, message: 'no file manager' });
  assert.deepEqual(await client.bundle(), { file_name: 'outpost-diagnostics.txt', text: 'state: IDLE' });
  await assert.rejects(client.read({ log_after: null }), { message: 'the agent is not reachable (ERR_INTERNAL)' });
  assert.deepEqual(sent, [
    { id: 1, method: 'check_now' },
    { id: 2, method: 'open_log_folder' },
    { id: 3, method: 'bundle' },
    { id: 4, method: 'read', params: { log_after: null } },
  ]);
});

test('an answer that is not one is an error for the page, never data: another id, another shape, not a result', async () => {
  const answering = (answer: unknown) => diagnosticsClient(async () => answer);
  await assert.rejects(answering({ id: 9, ok: true, result: { ok: true, message: 'x' } }).checkNow(), /not a diagnostics result/);
  await assert.rejects(answering({ id: 1, ok: true, result: { ok: 'yes' } }).checkNow(), /does not have the shape the page expects/);
  await assert.rejects(answering({ id: 1, ok: true, result: { file_name: 'x', text: 'y', extra: 1 } }).bundle(), /does not have the shape/);
  await assert.rejects(answering('<html>').checkNow(), /not a diagnostics result/);
  await assert.rejects(answering({ id: 1, ok: false, error: { code: 'ERR_DIAGNOSTICS_BAD_CALL', message: 'refused' } }).checkNow(), {
    message: 'refused (ERR_DIAGNOSTICS_BAD_CALL)',
  });
});
