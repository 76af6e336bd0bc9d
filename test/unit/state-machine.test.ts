import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGENT_STATES, type AgentState, isUpdatingState } from '../../app/common/agent-state.js';
import { StateMachine, TRANSITIONS } from '../../app/main/core/state-machine.js';
import { memoryLogger } from '../helpers/memory-logger.js';

/** Drives a fresh machine to `state` along legal moves (a breadth-first path from STARTING). */
function machineIn(state: AgentState) {
  const log = memoryLogger();
  const machine = new StateMachine(log, () => new Date(0));
  const previous = new Map<AgentState, AgentState>();
  const queue: AgentState[] = ['STARTING'];
  while (queue.length > 0) {
    const at = queue.shift() as AgentState;
    for (const next of TRANSITIONS[at]) {
      if (next !== 'STARTING' && !previous.has(next)) {
        previous.set(next, at);
        queue.push(next);
      }
    }
  }
  const path: AgentState[] = [];
  for (let s: AgentState | undefined = state; s && s !== 'STARTING'; s = previous.get(s)) path.unshift(s);
  for (const step of path) assert.equal(machine.setState(step, 'test path'), true);
  log.lines.length = 0;
  return { machine, log };
}

test('every state is reachable from STARTING and the table names only known states', () => {
  for (const state of AGENT_STATES) {
    assert.equal(machineIn(state).machine.state, state);
    for (const next of TRANSITIONS[state]) assert.ok(AGENT_STATES.includes(next), `${state} -> ${next}`);
  }
});

test('every illegal transition is refused, logged as an error, and changes nothing', () => {
  let refused = 0;
  for (const from of AGENT_STATES) {
    for (const to of AGENT_STATES) {
      if (TRANSITIONS[from].includes(to)) continue;
      const { machine, log } = machineIn(from);
      let heard = 0;
      machine.subscribe(() => heard++);
      assert.equal(machine.setState(to, 'probe'), false, `${from} -> ${to} must be refused`);
      assert.equal(machine.state, from);
      assert.equal(heard, 0, 'listeners hear only legal moves');
      assert.match(log.lines.join('\n'), new RegExp(`^error .*illegal state transition ${from} -> ${to} refused`, 'm'));
      refused++;
    }
  }
  // 9 states: 81 pairs, of which the table allows 19.
  assert.equal(refused, 81 - Object.values(TRANSITIONS).flat().length);
});

test('every legal transition is logged once with its reason and heard by subscribers', () => {
  for (const from of AGENT_STATES) {
    for (const to of TRANSITIONS[from]) {
      const { machine, log } = machineIn(from);
      const heard: string[] = [];
      const unsubscribe = machine.subscribe((change) => heard.push(`${change.from}->${change.to}:${change.reason}`));
      assert.equal(machine.setState(to, 'because'), true);
      assert.deepEqual(heard, [`${from}->${to}:because`]);
      assert.deepEqual(log.lines, [`info state ${from} -> ${to}: because`]);
      unsubscribe();
    }
  }
});

test('SHUTTING_DOWN is final and reachable from every other state', () => {
  assert.deepEqual(TRANSITIONS.SHUTTING_DOWN, []);
  for (const state of AGENT_STATES) {
    if (state !== 'SHUTTING_DOWN') assert.ok(TRANSITIONS[state].includes('SHUTTING_DOWN'), state);
  }
});

test('FORCE_RESTARTING cannot be entered from an updating state', () => {
  for (const state of AGENT_STATES.filter(isUpdatingState)) {
    assert.ok(!TRANSITIONS[state].includes('FORCE_RESTARTING'), state);
  }
});

test('a throwing listener does not stop the others', () => {
  const { machine, log } = machineIn('STARTING');
  const heard: string[] = [];
  machine.subscribe(() => {
    throw new Error('boom');
  });
  machine.subscribe((c) => heard.push(c.to));
  machine.setState('IDLE', 'ok');
  assert.deepEqual(heard, ['IDLE']);
  assert.match(log.lines.join('\n'), /a state listener threw/);
});
