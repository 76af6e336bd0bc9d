import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desktopEntry, desktopExecArg, launchAgentPlist, windowsCommandLine } from '../../app/main/platform/autostart.js';
import { runValueData } from '../../app/main/platform/win32-autostart.js';

test('a Desktop Entry Exec argument: quoted only when it must be, its specials escaped, % doubled', () => {
  assert.equal(desktopExecArg('/opt/outpost/outpost'), '/opt/outpost/outpost');
  assert.equal(desktopExecArg('/opt/Out Post/outpost'), '"/opt/Out Post/outpost"');
  assert.equal(desktopExecArg('a"b$c`d'), '"a\\\\"b\\\\$c\\\\`d"', 'each escape is escaped again by the value rules');
  assert.equal(desktopExecArg('50%'), '50%%');
  assert.equal(desktopExecArg(''), '""');
  assert.match(desktopEntry({ command: '/opt/Out Post/outpost', args: ['--x'] }), /\nExec="\/opt\/Out Post\/outpost" --x\n/);
});

test('a Run value: each argument as CommandLineToArgvW reads it back', () => {
  assert.equal(windowsCommandLine({ command: 'C:\\Program Files\\Outpost\\Outpost.exe', args: [] }), '"C:\\Program Files\\Outpost\\Outpost.exe"');
  assert.equal(windowsCommandLine({ command: 'C:\\node.exe', args: ['C:\\a b\\outpost.js', 'plain'] }), 'C:\\node.exe "C:\\a b\\outpost.js" plain');
  assert.equal(windowsCommandLine({ command: 'x', args: ['say "hi"', 'C:\\dir with space\\'] }), 'x "say \\"hi\\"" "C:\\dir with space\\\\"');
});

test('reg query: the value data from its listing, or null when the value is not in it', () => {
  const listing = '\r\nHKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\r\n    Outpost    REG_SZ    "C:\\Program Files\\Outpost\\Outpost.exe"\r\n\r\n';
  assert.equal(runValueData(listing), '"C:\\Program Files\\Outpost\\Outpost.exe"');
  assert.equal(runValueData('\r\nHKEY_CURRENT_USER\\...\\Run\r\n    Other    REG_SZ    x\r\n'), null);
});

test('a LaunchAgent: the program and its arguments, XML-escaped, run at load', () => {
  const plist = launchAgentPlist('dev.outpost.agent', { command: '/Applications/Outpost.app/Contents/MacOS/Outpost', args: ['a&b'] });
  assert.match(plist, /<key>Label<\/key>\n {2}<string>dev\.outpost\.agent<\/string>/);
  assert.match(plist, /<string>\/Applications\/Outpost\.app\/Contents\/MacOS\/Outpost<\/string>\n {4}<string>a&amp;b<\/string>/);
  assert.match(plist, /<key>RunAtLoad<\/key>\n {2}<true\/>/);
});
