import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGENT_STATES } from '../../app/common/agent-state.js';
import { HANDOFF_BLOCK_REASON, sessionEndDecision, sessionEndResponse } from '../../app/main/shell/session-end.js';
import { hwndOf, SHUTDOWN_BLOCK_CALLS, wideString } from '../../app/main/shell/shutdown-block.js';

test('the end of the session is delayed in the hand-off, with a reason, and in no other state', () => {
  for (const state of AGENT_STATES) {
    const decision = sessionEndDecision(state);
    if (state === 'UPDATING_HANDOFF') assert.deepEqual(decision, { delay: true, reason: HANDOFF_BLOCK_REASON }, state);
    else assert.deepEqual(decision, { delay: false, reason: null }, state);
  }
  // Windows shows at most MAX_STR_BLOCKREASON (256) characters of it.
  assert.ok(HANDOFF_BLOCK_REASON.length < 256);
});

test('each session message in each state: a question never stops the agent, an end always does', () => {
  for (const state of AGENT_STATES) {
    const delay = state === 'UPDATING_HANDOFF';
    assert.deepEqual(sessionEndResponse('query-session-end', state), { preventDefault: delay, stop: false }, `query-session-end in ${state}`);
    assert.deepEqual(sessionEndResponse('session-end', state), { preventDefault: false, stop: true }, `session-end in ${state}`);
    assert.deepEqual(sessionEndResponse('shutdown', state), { preventDefault: delay, stop: true }, `shutdown in ${state}`);
  }
});

test("ShutdownBlockReasonCreate's arguments: the HWND from Electron's handle buffer, the reason as a C wide string", () => {
  const handle = Buffer.alloc(8);
  handle.writeBigUInt64LE(0x0003_04a2n);
  assert.equal(hwndOf(handle), 0x0003_04a2);
  const handle32 = Buffer.alloc(4);
  handle32.writeUInt32LE(0x1234);
  assert.equal(hwndOf(handle32), 0x1234);
  assert.throws(() => hwndOf(Buffer.alloc(8)), /not a window handle: 0x0/);

  const reason = wideString('Outpost · update');
  assert.equal(reason.length, ('Outpost · update'.length + 1) * 2);
  assert.equal(reason.readUInt16LE(reason.length - 2), 0, 'NUL-terminated');
  assert.equal(reason.toString('utf16le', 0, reason.length - 2), 'Outpost · update');

  assert.deepEqual(SHUTDOWN_BLOCK_CALLS.ShutdownBlockReasonCreate, { dll: 'user32.dll', ret: 'I32', params: ['I64', 'U8Array'] });
  assert.deepEqual(SHUTDOWN_BLOCK_CALLS.ShutdownBlockReasonDestroy, { dll: 'user32.dll', ret: 'I32', params: ['I64'] });
});
