import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { reapAll, startChild } from './helpers/child';
import { ensureDist } from './helpers/dist';

// A listener process fills its fd table, so the kernel cannot open the fd of
// the next permission event: read(2) fails with EMFILE and the kernel denies
// that access (DESIGN rule 7). The instance must report it as an 'error'
// and keep running: once fds are free again, the next event is delivered.
const LISTENER = `
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const { AsyncFanotify, MaskFlags } = require(process.argv[1]);
const file = process.argv[2];
const afan = new AsyncFanotify({ permissionTimeout: 5000 });
const errors = [];
afan.on('error', (e) => errors.push({ kind: e.kind, code: e.code }));
let delivered = 0;
afan.on('permission', (ev) => { delivered++; ev.allow(); });
const open = (label) => new Promise((resolve) => {
  // The opener is a separate process: this one's own events are allowed natively.
  const child = require('node:child_process').spawn('cat', [file], { stdio: 'ignore' });
  child.on('exit', (code) => resolve({ label, code }));
});
(async () => {
  await afan.addWatch(file, MaskFlags.OPEN_PERM);
  const filler = [];
  const first = open('before');
  const before = await first;
  // Leave spawn() what it needs, then take every other fd.
  const opener = require('node:child_process').spawn('sh', ['-c', 'sleep 0.3; cat "$0"', file], { stdio: 'ignore' });
  const during = new Promise((resolve) => opener.on('exit', (code) => resolve({ label: 'during', code })));
  try { for (;;) filler.push(fs.openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
  const duringResult = await during;
  for (const fd of filler) fs.closeSync(fd);
  const after = await open('after');
  await new Promise((r) => setTimeout(r, 100));
  console.log(JSON.stringify({ before, during: duringResult, after, errors, delivered }));
  await afan.close();
})();
`;

// A handler that reads ev.fd with no descriptor left: a FanotifyError, the
// event still pending; once a descriptor is free, ev.fd works.
const DUP_LISTENER = `
const fs = require('node:fs');
const { Fanotify, MaskFlags } = require(process.argv[1]);
const file = process.argv[2];
const fan = new Fanotify({ permissionTimeout: 10000, defaultResponse: 'deny' });
fan.addWatch(file, MaskFlags.OPEN_PERM);
const opener = require('node:child_process').spawn('cat', [file], { stdio: 'ignore' });
const ev = fan.readEvent({ timeout: 5000 });
const filler = [];
try { for (;;) filler.push(fs.openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
let err = null;
try { console.log(ev.fd); } catch (e) { err = { name: e.name, kind: e.kind, code: e.code }; }
fs.closeSync(filler.pop());
const fd = ev.fd;
const link = fs.readlinkSync('/proc/self/fd/' + fd);
for (const f of filler) fs.closeSync(f);
ev.allow();
fs.closeSync(fd);
opener.on('exit', (code) => { console.log(JSON.stringify({ err, link, code })); fan.close(); });
`;

describeRoot('EMFILE while reading permission events', () => {
  let scratch: Scratch;
  beforeAll(() => {
    ensureDist();
    scratch = mountTmpfs();
  });
  afterAll(() => {
    reapAll();
    scratch.cleanup();
  });

  test('is reported as an error and the instance keeps running', async () => {
    const file = scratch.file('guarded');
    fs.writeFileSync(file, 'x');
    const dist = path.resolve(__dirname, '../dist');
    // A small fd limit keeps the filling loop short.
    const child = startChild('prlimit', ['--nofile=256', process.execPath, '-e', LISTENER, dist, file], 20000);
    const result = await child.done;
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout.trim());
    expect(report.before.code).toBe(0);
    // The kernel could not give us the event's fd, so it denied the open.
    expect(report.during.code).not.toBe(0);
    expect(report.errors).toContainEqual({ kind: 'LimitReached', code: 'EMFILE' });
    // Still running: the next access is delivered and allowed.
    expect(report.after.code).toBe(0);
    expect(report.delivered).toBe(2);
  });

  test('ev.fd with no descriptor left throws LimitReached and leaves the event pending; then it works', async () => {
    const file = scratch.file('guarded-dup');
    fs.writeFileSync(file, 'x');
    const dist = path.resolve(__dirname, '../dist');
    const child = startChild('prlimit', ['--nofile=256', process.execPath, '-e', DUP_LISTENER, dist, file], 20000);
    const result = await child.done;
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout.trim())).toEqual({
      err: { name: 'FanotifyError', kind: 'LimitReached', code: 'EMFILE' },
      link: file,
      code: 0, // allowed by the handler, not denied by the deadline
    });
  });
});
