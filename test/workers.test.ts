import { ensureDist } from './helpers/dist';
import { finished, running, sleep, waitUntil } from './helpers/wait';
/**
 * AsyncFanotify in worker threads: instances in several workers at once, a
 * worker's instance working while the main thread is blocked, and a worker
 * that ends (terminate() or process.exit() inside it) while its instance
 * holds unanswered permission events: the environment cleanup hook must
 * answer them, or the blocked processes would wait for permissionTimeout.
 *
 * Workers load the compiled library from dist/ (built in beforeAll if stale).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AsyncFanotify, MaskFlags, type FanotifyEvent } from '../lib';
import { reapAll, startNode } from './helpers/child';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const DIST = path.resolve(__dirname, '../dist');

/** Reads the file named by argv[1]; prints 'ok' or the error code. */
const READ_FILE = `
const fs = require('fs');
try { fs.readFileSync(process.argv[1]); console.log('ok'); }
catch (e) { console.log(e.code || String(e)); }
`;

/** READ_FILE after 300 ms: the open comes while the test's thread is already blocked. */
const READ_FILE_LATER = `setTimeout(() => {${READ_FILE}}, 300);`;

/**
 * A worker that guards workerData.file with OPEN_PERM and never answers;
 * it reports each event, and exits by itself after `exitAfter` events if set.
 */
const HOLDING_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { AsyncFanotify, MaskFlags } = require(workerData.dist);
(async () => {
  const afan = new AsyncFanotify({ permissionTimeout: 60000 });
  await afan.addWatch(workerData.file, MaskFlags.OPEN_PERM);
  let seen = 0;
  afan.on('permission', (ev) => {
    parentPort.postMessage({ type: 'permission', pid: ev.pid });
    if (++seen === workerData.exitAfter) setTimeout(() => process.exit(0), 50);
  });
  parentPort.postMessage({ type: 'ready' });
})().catch((e) => parentPort.postMessage({ type: 'failed', message: String((e && e.stack) || e) }));
`;

/**
 * A worker with two instances: CREATE on workerData.dir, and OPEN_PERM on
 * workerData.file answered workerData.answer. Reports everything it sees.
 */
const WATCHING_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { AsyncFanotify, MaskFlags } = require(workerData.dist);
(async () => {
  const notes = new AsyncFanotify();
  await notes.addWatch(workerData.dir, MaskFlags.CREATE);
  notes.on('event', (ev) => parentPort.postMessage({ type: 'event', types: ev.types(), path: ev.path, pid: ev.pid }));
  const guard = new AsyncFanotify({ permissionTimeout: 20000 });
  await guard.addWatch(workerData.file, MaskFlags.OPEN_PERM);
  guard.on('permission', (ev) => {
    if (workerData.answer === 'allow') ev.allow(); else ev.deny();
    parentPort.postMessage({ type: 'permission', pid: ev.pid, path: ev.path, at: Date.now() });
  });
  parentPort.on('message', async (m) => {
    if (m === 'close') { await notes.close(); await guard.close(); parentPort.postMessage({ type: 'closed' }); }
  });
  parentPort.postMessage({ type: 'ready' });
})().catch((e) => parentPort.postMessage({ type: 'failed', message: String((e && e.stack) || e) }));
`;

/**
 * A worker that, on its first permission event, starts close() and exits at
 * once: its environment goes away while the group fds are being closed on
 * the library's closing thread.
 */
const CLOSING_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { AsyncFanotify, MaskFlags } = require(workerData.dist);
(async () => {
  const afan = new AsyncFanotify({ permissionTimeout: 60000 });
  await afan.addWatch(workerData.file, MaskFlags.OPEN_PERM);
  await afan.addWatch(workerData.dir, MaskFlags.CREATE, { recursive: true });
  afan.on('permission', (ev) => {
    parentPort.postMessage({ type: 'permission', pid: ev.pid });
    void afan.close();
    process.exit(0);
  });
  parentPort.postMessage({ type: 'ready' });
})().catch((e) => parentPort.postMessage({ type: 'failed', message: String((e && e.stack) || e) }));
`;

interface Message {
  type: string;
  [key: string]: unknown;
}



/** A worker whose messages are collected; terminated after each test. */
class TestWorker {
  readonly worker: Worker;
  readonly messages: Message[] = [];
  exited: number | undefined;
  error: Error | undefined;

  constructor(code: string, workerData: Record<string, unknown>) {
    this.worker = new Worker(code, { eval: true, workerData: { dist: DIST, ...workerData } });
    this.worker.on('message', (m: Message) => this.messages.push(m));
    this.worker.on('error', (e) => (this.error = e));
    this.worker.on('exit', (code) => (this.exited = code));
  }

  of(type: string): Message[] {
    return this.messages.filter((m) => m.type === type);
  }

  async ready(ms = 10000): Promise<void> {
    await waitUntil(() => this.of('ready').length > 0 || this.of('failed').length > 0 || this.error !== undefined || this.exited !== undefined, ms, 'the worker to be ready');
    const failed = this.of('failed')[0];
    if (failed) throw new Error(`worker failed: ${String(failed.message)}`);
    if (this.error) throw this.error;
    if (this.exited !== undefined) throw new Error(`worker exited early (${this.exited})`);
  }
}

describeRoot('AsyncFanotify in worker threads', () => {
  let scratch: Scratch;
  let counter = 0;
  const workers: TestWorker[] = [];
  const open: AsyncFanotify[] = [];

  function startWorker(code: string, data: Record<string, unknown>): TestWorker {
    const w = new TestWorker(code, data);
    workers.push(w);
    return w;
  }

  function guardedFile(): string {
    const file = scratch.file(`guarded-${++counter}.txt`);
    fs.writeFileSync(file, 'contents');
    return file;
  }

  beforeAll(() => {
    ensureDist();
    scratch = mountTmpfs();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => withTimeout(w.worker.terminate(), 10000, 'worker.terminate()')));
    for (const afan of open.splice(0)) await afan.close();
    reapAll();
  });
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  test('worker.terminate() while its instance holds permission events: the blocked openers finish promptly', async () => {
    const file = guardedFile();
    const w = startWorker(HOLDING_WORKER, { file });
    await w.ready();
    const openers = [startNode(READ_FILE, [file], 60000), startNode(READ_FILE, [file], 60000)];
    await waitUntil(() => openers.every((o) => w.of('permission').some((m) => m.pid === o.pid)), 8000, 'the worker to hold both events');
    await sleep(200);
    expect(openers.map(running)).toEqual([true, true]);

    const t0 = Date.now();
    await withTimeout(w.worker.terminate(), 5000, 'worker.terminate()');
    const results = await withTimeout(Promise.all(openers.map((o) => o.done)), 5000, 'the openers after terminate() (permissionTimeout is 60 s)');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(results.map((r) => r.stdout.trim())).toEqual(['ok', 'ok']);
  });

  test('a worker that exits by itself (process.exit in the worker) with pending events: the openers finish promptly', async () => {
    const file = guardedFile();
    const w = startWorker(HOLDING_WORKER, { file, exitAfter: 2 });
    await w.ready();
    const openers = [startNode(READ_FILE, [file], 60000), startNode(READ_FILE, [file], 60000)];
    await waitUntil(() => w.exited !== undefined, 8000, 'the worker to exit by itself');
    expect(w.of('permission').map((m) => m.pid).sort()).toEqual(openers.map((o) => o.pid).sort());
    const t0 = Date.now();
    const results = await withTimeout(Promise.all(openers.map((o) => o.done)), 5000, 'the openers after the worker exited (permissionTimeout is 60 s)');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(results.map((r) => r.stdout.trim())).toEqual(['ok', 'ok']);
  });

  test('a worker that exits while close() is still closing its groups: no crash, the opener finishes promptly', async () => {
    const file = guardedFile();
    const w = startWorker(CLOSING_WORKER, { file, dir: scratch.dir });
    await w.ready();
    const opener = startNode(READ_FILE, [file], 60000);
    await waitUntil(() => w.exited !== undefined, 8000, 'the worker to exit');
    expect([w.exited, w.error, w.of('permission').map((m) => m.pid)]).toEqual([0, undefined, [opener.pid]]);
    const result = await withTimeout(opener.done, 5000, 'the opener after the worker exited (permissionTimeout is 60 s)');
    expect(result.stdout.trim()).toBe('ok');
  });

  test('instances in several workers and the main thread at once all receive their events and answer their permission events', async () => {
    const dir = scratch.file(`shared-${++counter}`);
    fs.mkdirSync(dir);
    const answers = ['allow', 'deny', 'allow'] as const;
    const files = answers.map(() => guardedFile());
    const ws = answers.map((answer, i) => startWorker(WATCHING_WORKER, { dir, file: files[i], answer }));
    await Promise.all(ws.map((w) => w.ready()));

    const main = new AsyncFanotify();
    open.push(main);
    await main.addWatch(dir, MaskFlags.CREATE);
    const mainSeen: FanotifyEvent[] = [];
    main.on('event', (ev) => void mainSeen.push(ev));

    const names = ['one', 'two', 'three'].map((n) => path.join(dir, n));
    const child = startNode(
      `const fs = require('fs');
       const [files, made] = JSON.parse(process.argv[1]);
       for (const f of made) fs.writeFileSync(f, 'x');
       console.log(JSON.stringify(files.map((f) => { try { fs.readFileSync(f); return 'ok'; } catch (e) { return e.code; } })));`,
      [JSON.stringify([files, names])],
      30000,
    );
    const r = await finished(child, 8000);
    expect(JSON.parse(r.stdout)).toEqual(['ok', 'EPERM', 'ok']);

    await waitUntil(() => ws.every((w) => w.of('event').length >= names.length) && mainSeen.length >= names.length, 5000, 'every instance to see the creates');
    for (const [i, w] of ws.entries()) {
      expect(w.of('event').map((m) => [m.types, m.path, m.pid])).toEqual(names.map((n) => [['CREATE'], n, child.pid]));
      expect(w.of('permission').map((m) => [m.pid, m.path])).toEqual([[child.pid, files[i]]]);
    }
    expect(mainSeen.map((e) => [e.types(), e.path, e.pid])).toEqual(names.map((n) => [['CREATE'], n, child.pid]));

    // Each worker closes its own instances cleanly.
    for (const w of ws) w.worker.postMessage('close');
    await waitUntil(() => ws.every((w) => w.of('closed').length === 1), 5000, 'the workers to close their instances');
  });

  test("a worker's instance answers while the main thread is blocked (it runs on the worker's own loop)", async () => {
    const dir = scratch.file(`busy-${++counter}`);
    fs.mkdirSync(dir);
    const file = guardedFile();
    const w = startWorker(WATCHING_WORKER, { dir, file, answer: 'deny' });
    await w.ready();
    // The child opens 300 ms after it starts (a node child can start in
    // under 30 ms): by then this thread is blocked, for 1.5 s.
    const child = startNode(READ_FILE_LATER, [file], 30000);
    await sleep(30);
    const blockedFrom = Date.now();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
    const blockedUntil = Date.now();
    const r = await finished(child);
    expect(r.stdout.trim()).toBe('EPERM');
    await waitUntil(() => w.of('permission').length === 1, 3000, "the worker's report");
    const at = w.of('permission')[0].at as number;
    // The answer came from the worker while this thread could run nothing.
    expect(at).toBeGreaterThanOrEqual(blockedFrom);
    expect(at).toBeLessThan(blockedUntil);
  });
});
