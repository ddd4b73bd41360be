import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { reapAll, startChild } from './helpers/child';
import { ensureDist } from './helpers/dist';

// A child process that owns an unclosed sync instance with a permission mark
// and a long permissionTimeout, starts an opener that blocks on it, drops
// the instance and collects garbage. The opener must be released by the
// finalizer (close answers pending events), long before the deadline would.
const OWNER = `
const { spawn } = require('node:child_process');
const { Fanotify, MaskFlags } = require(process.argv[1]);
const file = process.argv[2];
let fan = new Fanotify({ permissionTimeout: 60000, defaultResponse: 'allow' });
fan.addWatch(file, MaskFlags.OPEN_PERM);
const started = Date.now();
const opener = spawn('cat', [file], { stdio: 'ignore' });
opener.on('exit', (code) => {
  console.log(JSON.stringify({ code, ms: Date.now() - started }));
  process.exit(0);
});
setTimeout(() => {
  fan = null;                       // unclosed, unreachable
  const collect = () => { global.gc(); setTimeout(collect, 50); };
  collect();
}, 300);
`;

describeRoot('garbage collection of an unclosed instance', () => {
  let scratch: Scratch;
  beforeAll(() => {
    ensureDist();
    scratch = mountTmpfs();
  });
  afterAll(() => {
    reapAll();
    scratch.cleanup();
  });

  test('answers the permission events it held', async () => {
    const file = scratch.file('guarded');
    fs.writeFileSync(file, 'x');
    const dist = path.resolve(__dirname, '../dist');
    const owner = startChild(process.execPath, ['--expose-gc', '-e', OWNER, dist, file], 15000);
    const result = await owner.done;
    expect(result.signal).toBeNull();
    const { code, ms } = JSON.parse(result.stdout.trim());
    expect(code).toBe(0);
    // Released by the finalizer, not by the 60 s deadline.
    expect(ms).toBeLessThan(5000);
  });
});
