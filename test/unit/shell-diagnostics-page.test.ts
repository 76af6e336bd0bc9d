import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../app/base/errors.js';
import { API_MAX_CALL_BYTES, DIAGNOSTICS_CSP, type DiagnosticsApi, PAGE_FILES } from '../../app/common/diagnostics.js';
import { dispatchApiCall } from '../../app/main/core/diagnostics/api-dispatch.js';
import {
  callText,
  DIAGNOSTICS_PAGE_URL,
  isDiagnosticsUrl,
  isDownloadAllowed,
  isPermissionGranted,
  isTrustedSender,
  pageFile,
  pageHeaders,
} from '../../app/main/shell/diagnostics-page.js';

test('the page is served from its own files only: the allow-list, by exact name, under our origin', () => {
  assert.deepEqual(pageFile(DIAGNOSTICS_PAGE_URL), { name: 'index.html', contentType: 'text/html; charset=utf-8' });
  assert.deepEqual(pageFile('outpost://diagnostics/'), { name: 'index.html', contentType: 'text/html; charset=utf-8' });
  assert.deepEqual(pageFile('outpost://diagnostics/diagnostics.js?v=2#x'), { name: 'diagnostics.js', contentType: 'text/javascript; charset=utf-8' });
  assert.deepEqual(pageFile('outpost://diagnostics/styles.css'), { name: 'styles.css', contentType: 'text/css; charset=utf-8' });
  for (const url of [
    'outpost://diagnostics/../../package.json',
    'outpost://diagnostics/%2e%2e/config.json',
    'outpost://diagnostics/index.html/../../preload/preload.cjs',
    'outpost://diagnostics/diagnostics.js.map',
    'outpost://diagnostics/toString',
    'outpost://diagnostics/hasOwnProperty',
    'outpost://other/index.html',
    'outpost://diagnostics:8080/index.html',
    'outpost://user:pw@diagnostics/index.html',
    'https://diagnostics/index.html',
    'not a url',
  ]) {
    assert.equal(pageFile(url), null, url);
  }
  assert.deepEqual(Object.keys(PAGE_FILES).sort(), ['diagnostics.js', 'index.html', 'styles.css']);
});

test("every file carries the page's CSP: no inline script or style, no remote origin, no framing", () => {
  const headers = pageHeaders('text/html; charset=utf-8');
  assert.equal(headers['Content-Security-Policy'], DIAGNOSTICS_CSP);
  assert.equal(headers['X-Content-Type-Options'], 'nosniff');
  const directives = new Map(DIAGNOSTICS_CSP.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1)]));
  assert.deepEqual(directives.get('default-src'), ["'none'"]);
  assert.deepEqual(directives.get('script-src'), ["'self'"]);
  assert.deepEqual(directives.get('style-src'), ["'self'"]);
  assert.deepEqual(directives.get('frame-ancestors'), ["'none'"]);
  assert.doesNotMatch(DIAGNOSTICS_CSP, /unsafe-inline|unsafe-eval|https?:|\*/);
});

test("a call is taken only from the diagnostics window's top frame while it shows our page", () => {
  const page = { frameUrl: DIAGNOSTICS_PAGE_URL, topFrame: true, contentsId: 7 };
  assert.equal(isTrustedSender(page, 7), true);
  assert.equal(isTrustedSender({ ...page, frameUrl: 'outpost://diagnostics/#log' }, 7), true);
  assert.equal(isTrustedSender(page, null), false, 'no diagnostics window is open');
  assert.equal(isTrustedSender({ ...page, contentsId: 8 }, 7), false, 'another window');
  assert.equal(isTrustedSender({ ...page, topFrame: false }, 7), false, 'a frame inside the page');
  assert.equal(isTrustedSender({ ...page, frameUrl: 'https://example.com/' }, 7), false, 'navigated away');
  assert.equal(isTrustedSender({ ...page, frameUrl: 'outpost://diagnostics.evil/' }, 7), false);
  assert.equal(isTrustedSender({ ...page, frameUrl: null }, 7), false, 'the frame is gone');
});

test('permissions: the clipboard for our origin, nothing else for anyone', () => {
  assert.equal(isPermissionGranted('clipboard-sanitized-write', 'outpost://diagnostics'), true);
  assert.equal(isPermissionGranted('clipboard-sanitized-write', DIAGNOSTICS_PAGE_URL), true);
  assert.equal(isPermissionGranted('clipboard-sanitized-write', 'https://example.com'), false);
  assert.equal(isPermissionGranted('clipboard-sanitized-write', undefined), false);
  for (const permission of ['clipboard-read', 'media', 'notifications', 'geolocation', 'openExternal', 'fullscreen', 'unknown']) {
    assert.equal(isPermissionGranted(permission, 'outpost://diagnostics'), false, permission);
  }
});

test("downloads: the page's own blob (the support bundle), nothing else", () => {
  assert.equal(isDownloadAllowed('blob:outpost://diagnostics/4c1c9f0e-2f5e-4d0e-9a57-3c5c2b3f1d11'), true);
  assert.equal(isDownloadAllowed('blob:https://example.com/4c1c9f0e'), false);
  assert.equal(isDownloadAllowed('outpost://diagnostics/index.html'), false);
  assert.equal(isDownloadAllowed('https://example.com/setup.exe'), false);
  assert.equal(isDiagnosticsUrl('blob:outpost://diagnostics/x'), false);
});

test('what the IPC carries reaches the dispatcher as JSON text; what JSON cannot hold is refused there', async () => {
  const api: DiagnosticsApi = {
    read: () => Promise.reject(new Error('not used')),
    checkNow: async () => ({ ok: true, message: 'check started' }),
    openLogFolder: () => Promise.reject(new Error('not used')),
    bundle: () => Promise.reject(new Error('not used')),
  };
  assert.deepEqual(await dispatchApiCall(callText({ id: 3, method: 'check_now' }), api), { id: 3, ok: true, result: { ok: true, message: 'check started' } });
  const cyclic: Record<string, unknown> = { id: 4, method: 'check_now' };
  cyclic.self = cyclic;
  for (const message of [{ id: 5, method: 'check_now', big: 1n }, cyclic, undefined, { id: 6, method: 'check_now', pad: 'x'.repeat(API_MAX_CALL_BYTES) }]) {
    const result = await dispatchApiCall(callText(message), api);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.error.code, ErrorCode.DIAGNOSTICS_BAD_CALL);
  }
});
