/**
 * Every code block of README.md runs here, so the guide cannot drift from
 * the code. A block that is not checked is a defect: a fenced block whose
 * language is not js, ts or sh fails this test, and so does an unknown marker.
 *
 * How blocks run
 * - Paths under `/srv/` are rewritten to `<tmpfs>/srv/`, a private tmpfs this
 *   file mounts. Before each block it holds `srv/data` (report.txt,
 *   notes.txt, secret.key, noisy.log), `srv/logs` (app.log, sub/) and
 *   `srv/private` (mode 0700, root's). While a block runs, another process
 *   (ACTIVITY below) creates, writes, reads, renames and deletes files in
 *   `srv/data` and `srv/logs`, so blocks that wait for events get them, and
 *   permission events come from a process other than the block's own.
 * - js: written to a `.mjs` file next to a `node_modules/fanotify` link to
 *   this repository and run with node; it must exit 0 in time.
 * - ts: type-checked with tsc (strict, nodenext, against dist/ types), then
 *   its types stripped by @swc/core, then run like a js block.
 * - sh: run with `bash -e -o pipefail` in the repository root (TMPDIR on the
 *   tmpfs, no npm_* variables of an outer `npm test`); it must exit 0. A
 *   leading `sudo ` is dropped: the tests run as root.
 *
 * Markers: an HTML comment on the line before the fence, `<!-- test: NAME -->`.
 * - `as-nobody` (js): runs as nobody (setpriv 65534), against a copy of the
 *   built package on the tmpfs; `/srv/private` is then unreadable.
 * - `interrupt` (sh): a command that runs until Ctrl-C: after its first line
 *   of output its process group gets SIGINT, as from Ctrl-C. The command must
 *   stop promptly, print no error, and exit 0; npx itself reports any
 *   interrupted command as 130 (its `sh -c` dies of the SIGINT), so 130 is
 *   accepted from npx, and `fanotify watch` exiting 0 on SIGINT is checked
 *   without npx in test/cli.test.ts.
 * - `packed-install` (sh): must be exactly `npm install fanotify`; installing
 *   the packed package with npm's defaults is what test/package.test.ts
 *   does, and this checks that test is there and does it.
 * - `setup` (sh): the repository set-up, `npm ci` and `npm test`: this cannot
 *   run itself; it checks the commands are the ones .ci/run runs (CI runs them
 *   on every submission) and that package.json defines them.
 * - `bench` (sh): `npm run bench` takes minutes and a C compiler; this checks
 *   the script is defined and, when scripts/bench.js exists, that
 *   `npm run bench -- --help` works.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { transformSync } from '@swc/core';
import { reapAll, runChild, startChild, startNode, type ChildResult, type RunningChild } from './helpers/child';
import { ensureDist } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { finished } from './helpers/wait';

const ROOT = path.resolve(__dirname, '..');
const README = path.join(ROOT, 'README.md');
const BLOCK_TIMEOUT = 30000;
const MARKERS = ['as-nobody', 'interrupt', 'packed-install', 'setup', 'bench'] as const;
type Marker = (typeof MARKERS)[number];

interface Block {
  lang: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  marker?: Marker;
  heading: string;
}

/** The fenced blocks of a Markdown text, with their marker and the heading they sit under. */
export function extractBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const h = /^#{1,6}\s+(.*)$/.exec(lines[i]);
    if (h) heading = h[1];
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    if (i >= lines.length) throw new Error(`README.md:${start + 1}: unterminated code block`);
    let j = start - 1;
    while (j >= 0 && lines[j].trim() === '') j--;
    const m = j >= 0 ? /^<!--\s*test:\s*(\S+)\s*-->$/.exec(lines[j].trim()) : null;
    if (m && !(MARKERS as readonly string[]).includes(m[1])) throw new Error(`README.md:${j + 1}: unknown test marker '${m[1]}' (known: ${MARKERS.join(', ')})`);
    blocks.push({ lang: open[1], code: body.join('\n') + '\n', line: start + 1, marker: m ? (m[1] as Marker) : undefined, heading });
  }
  return blocks;
}

/** The environment for npm and node children: nothing of an outer `npm test`. */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== 'INIT_CWD') env[key] = value;
  }
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

/** Keeps srv/data and srv/logs busy until killed (argv: the srv directory). */
const ACTIVITY = String.raw`
const fs = require('fs');
const path = require('path');
const srv = process.argv[1];
const data = path.join(srv, 'data');
const logs = path.join(srv, 'logs');
let n = 0;
const quiet = (fn) => { try { fn(); } catch {} };
setInterval(() => {
  n++;
  const tmp = path.join(data, 'tmp-' + n + '.tmp');
  quiet(() => fs.writeFileSync(tmp, 'scratch ' + n + '\n'));
  quiet(() => fs.appendFileSync(path.join(data, 'report.txt'), 'line ' + n + '\n'));
  quiet(() => fs.readFileSync(path.join(data, 'notes.txt')));
  quiet(() => fs.readFileSync(path.join(data, 'secret.key')));
  quiet(() => fs.appendFileSync(path.join(data, 'noisy.log'), 'noise\n'));
  quiet(() => fs.renameSync(tmp, tmp + '.done'));
  quiet(() => fs.unlinkSync(tmp + '.done'));
  quiet(() => fs.appendFileSync(path.join(logs, 'app.log'), 'log ' + n + '\n'));
  quiet(() => fs.writeFileSync(path.join(logs, 'sub', 'deep-' + (n % 3) + '.txt'), String(n)));
}, 25);
setTimeout(() => process.exit(0), 120000);
`;

const blocks = extractBlocks(fs.readFileSync(README, 'utf8'));

describe('README code blocks: extraction', () => {
  test('every block is js, ts or sh, so it can be run', () => {
    const unrunnable = blocks.filter((b) => !['js', 'ts', 'sh'].includes(b.lang)).map((b) => `README.md:${b.line} (${b.lang || 'no language'})`);
    expect(unrunnable).toEqual([]);
    expect(blocks.length).toBeGreaterThanOrEqual(20);
  });

  test('markers go with the languages they are for', () => {
    const wrong = blocks.filter((b) => (b.marker === 'as-nobody' ? b.lang !== 'js' : b.marker !== undefined && b.lang !== 'sh'));
    expect(wrong.map((b) => b.line)).toEqual([]);
  });

  test('the chapters are in the order users read them', () => {
    const headings = fs
      .readFileSync(README, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('## '))
      .map((l) => l.slice(3));
    const order = [
      'What fanotify is',
      'Installation',
      'Quick start',
      'Synchronous use',
      'Asynchronous use',
      'Event handling',
      'Permission events',
      'Error handling',
      'Best practices',
      'Performance',
      'Troubleshooting',
      'The command line tool',
    ];
    expect(headings.filter((h) => order.includes(h))).toEqual(order);
    expect(fs.readFileSync(README, 'utf8')).toMatch(/## Quick start[\s\S]*?```sh\nnpx fanotify demo\n```/);
  });
});

describeRoot('README code blocks run', () => {
  let scratch: Scratch;
  let srv: string;
  let work: string;
  let nobodyWork: string;
  let tmp: string;

  beforeAll(() => {
    ensureDist();
    scratch = mountTmpfs('size=256m,mode=1777');
    srv = scratch.file('srv');
    tmp = scratch.file('tmp');
    work = scratch.file('blocks');
    nobodyWork = scratch.file('blocks-nobody');
    // `npm ci` (prepare) makes the command executable for npx; a plain tsc
    // build, as ensureDist() may just have done, creates it without the bit.
    fs.chmodSync(path.join(ROOT, 'dist', 'cli.js'), 0o755);
    fs.mkdirSync(tmp, { mode: 0o1777 });
    fs.chmodSync(tmp, 0o1777);
    // Blocks import 'fanotify': this repository, through node_modules.
    fs.mkdirSync(path.join(work, 'node_modules'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(work, 'node_modules', 'fanotify'));
    fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    // nobody gets a copy of what the package needs at run time.
    const pkg = path.join(nobodyWork, 'node_modules', 'fanotify');
    fs.mkdirSync(path.join(pkg, 'node_modules'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'dist'), path.join(pkg, 'dist'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
    const built = path.join(ROOT, 'build', 'Release', 'fanotify.node');
    if (fs.existsSync(built)) {
      fs.mkdirSync(path.join(pkg, 'build', 'Release'), { recursive: true });
      fs.cpSync(built, path.join(pkg, 'build', 'Release', 'fanotify.node'));
    } else {
      fs.cpSync(path.join(ROOT, 'prebuilds'), path.join(pkg, 'prebuilds'), { recursive: true });
    }
    fs.cpSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(pkg, 'node_modules', 'node-gyp-build'), { recursive: true });
    fs.writeFileSync(path.join(nobodyWork, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    execFileSync('chmod', ['-R', 'a+rX', nobodyWork]);
  });
  afterEach(() => reapAll());
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  /** A fresh srv/ for each block. */
  function fixture(): void {
    fs.rmSync(srv, { recursive: true, force: true });
    for (const d of ['data', 'logs', 'logs/sub']) fs.mkdirSync(path.join(srv, d), { recursive: true });
    fs.writeFileSync(path.join(srv, 'data', 'report.txt'), 'report\n');
    fs.writeFileSync(path.join(srv, 'data', 'notes.txt'), 'notes\n');
    fs.writeFileSync(path.join(srv, 'data', 'secret.key'), 'secret\n');
    fs.writeFileSync(path.join(srv, 'data', 'noisy.log'), '');
    fs.writeFileSync(path.join(srv, 'logs', 'app.log'), '');
    fs.mkdirSync(path.join(srv, 'private'), { mode: 0o700 });
    fs.chmodSync(path.join(srv, 'private'), 0o700);
    execFileSync('chmod', ['-R', 'a+rX', path.join(srv, 'data'), path.join(srv, 'logs')]);
  }

  function rewrite(code: string): string {
    return code.replace(/\/srv\//g, `${srv}/`);
  }

  /** Runs `body` with the activity process going, and stops it after. */
  async function withActivity<T>(body: () => Promise<T>): Promise<T> {
    fixture();
    const activity = startNode(ACTIVITY, [srv], BLOCK_TIMEOUT * 4);
    try {
      return await body();
    } finally {
      activity.child.kill('SIGKILL');
      await finished(activity, 5000, 'the activity process');
    }
  }

  function expectSuccess(block: Block, r: ChildResult): void {
    if (r.code !== 0) {
      throw new Error(
        `README.md:${block.line} (under "${block.heading}") ended with ${r.signal ?? `exit code ${r.code}`}\n--- block\n${block.code}--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`,
      );
    }
  }

  async function runJs(block: Block, source: string, n: number): Promise<ChildResult> {
    const asNobody = block.marker === 'as-nobody';
    const dir = asNobody ? nobodyWork : work;
    const file = path.join(dir, `block-${n}.mjs`);
    fs.writeFileSync(file, source);
    fs.chmodSync(file, 0o644);
    const argv = asNobody
      ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, file]]
      : [process.execPath, [file]];
    return runChild(argv[0] as string, argv[1] as string[], BLOCK_TIMEOUT, { cwd: dir, env: childEnv({ TMPDIR: tmp }) });
  }

  function typecheck(block: Block, source: string, n: number): void {
    const file = path.join(work, `block-${n}.ts`);
    fs.writeFileSync(file, source);
    const config = path.join(work, `tsconfig-${n}.json`);
    fs.writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['ES2022', 'ESNext.Disposable'],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules', '@types')],
        },
        files: [file],
      }),
    );
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], { cwd: work, stdio: 'pipe', timeout: 60000 });
    } catch (err) {
      const e = err as { stdout?: Buffer; stderr?: Buffer };
      throw new Error(`README.md:${block.line}: the TypeScript block does not type-check:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  }

  async function runSh(block: Block, code: string): Promise<ChildResult> {
    const script = code.replace(/^sudo /gm, '');
    const env = childEnv({ TMPDIR: tmp });
    if (block.marker !== 'interrupt') {
      return runChild('bash', ['-e', '-o', 'pipefail', '-c', script], BLOCK_TIMEOUT * 2, { cwd: ROOT, env });
    }
    // Its own process group, so that SIGINT reaches bash, npx and the command, as Ctrl-C would.
    const child: RunningChild = startChild('bash', ['-e', '-o', 'pipefail', '-c', script], BLOCK_TIMEOUT, { cwd: ROOT, env, detached: true });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        child.child.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('\n')) resolve();
        });
        child.done.then((r) => reject(new Error(`README.md:${block.line} ended before printing anything:\n${r.stdout}\n${r.stderr}`)), reject);
      }),
      20000,
      `README.md:${block.line} to print a line`,
    );
    process.kill(-child.pid, 'SIGINT');
    return finished(child, 10000, `README.md:${block.line} after SIGINT`);
  }

  function checkMarkedSh(block: Block): void {
    const commands = block.code
      .split('\n')
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter(Boolean);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    switch (block.marker) {
      case 'packed-install': {
        expect(commands).toEqual(['npm install fanotify']);
        const packageTest = fs.readFileSync(path.join(ROOT, 'test', 'package.test.ts'), 'utf8');
        expect(packageTest).toContain("run('npm', ['pack'");
        expect(packageTest).toContain("run('npm', ['install', tarball");
        expect(pkg.name).toBe('fanotify');
        break;
      }
      case 'setup': {
        expect(commands).toEqual(['npm ci', 'npm test']);
        const ci = fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');
        expect(ci).toMatch(/^npm ci\b/m);
        expect(ci).toMatch(/\bnpm test\b/);
        expect(pkg.scripts.test).toBeDefined();
        expect(pkg.scripts.prepare).toBeDefined(); // what builds dist/ during npm ci
        break;
      }
      case 'bench':
        expect(commands.map((c) => c.replace(/^sudo /, ''))).toEqual(['npm run bench']);
        expect(pkg.scripts.bench).toBeDefined();
        break;
      default:
        throw new Error(`not a marked sh block: ${block.marker}`);
    }
  }

  const runnable = blocks.map((block, n) => ({ block, n, name: `README.md:${block.line} ${block.lang}${block.marker ? ` [${block.marker}]` : ''} under "${block.heading}"` }));

  test.each(runnable)('$name', async ({ block, n }) => {
    if (block.lang === 'sh' && (block.marker === 'packed-install' || block.marker === 'setup' || block.marker === 'bench')) {
      checkMarkedSh(block);
      if (block.marker === 'bench' && fs.existsSync(path.join(ROOT, 'scripts', 'bench.js'))) {
        const r = await runChild('npm', ['run', 'bench', '--', '--help'], 30000, { cwd: ROOT, env: childEnv() });
        expectSuccess(block, r);
        expect(r.stdout).toMatch(/usage: npm run bench/);
      }
      return;
    }
    const code = rewrite(block.code);
    const r = await withActivity(async () => {
      if (block.lang === 'sh') return runSh(block, code);
      let source = code;
      if (block.lang === 'ts') {
        typecheck(block, code, n);
        source = transformSync(code, { filename: `block-${n}.ts`, jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }).code;
      }
      return runJs(block, source, n);
    });
    if (block.marker === 'interrupt') {
      expect(r.signal === 'SIGINT' || r.code === 0 || (r.code === 130 && /^\s*npx /.test(block.code))).toBe(true);
      expect(r.stderr).not.toMatch(/Error|^\s+at /m);
    } else {
      expectSuccess(block, r);
    }
    if (block.code.includes('npm run docs')) {
      const api = path.join(ROOT, 'docs', 'api');
      expect(fs.readdirSync(api).sort()).toEqual(expect.arrayContaining(['README.md', 'fanotify.md', 'low-level.md']));
      const page = fs.readFileSync(path.join(api, 'fanotify.md'), 'utf8');
      for (const name of ['### Fanotify', '### AsyncFanotify', '### FanotifyEvent', '### FanotifyError', '### MaskFlags', 'waitForEvent(options?: WaitOptions)']) expect(page).toContain(name);
      expect(page).not.toContain('responderOf'); // @internal
      expect(fs.readFileSync(path.join(api, 'low-level.md'), 'utf8')).toMatch(/\| `FAN_CREATE` \| 256 \|/);
    }
    if (block.marker === 'as-nobody') {
      // The root-only directory is reported, not fatal.
      expect(r.stderr).toContain(`cannot watch ${srv}/private: `);
      expect(r.stdout).toContain(`watching ${srv}/data`);
    }
  }, BLOCK_TIMEOUT * 3);
});
