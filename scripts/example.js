#!/usr/bin/env node
// Runs one of the TypeScript examples: `npm run example -- NAME [args...]`.
// Node 20 cannot run .ts files, so the examples are compiled first (with
// tsconfig.examples.json, into dist-examples/, which git ignores) when the
// compiled file is missing or older than its source; then the compiled file
// runs in this process, with the arguments after NAME as its process.argv.
// The examples `import ... from 'fanotify'`: that resolves to this package
// itself (a package may require itself by name through its "exports"), so
// they read exactly as they would in a user's project.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const sources = path.join(root, 'examples');
const out = path.join(root, 'dist-examples');
const names = fs.readdirSync(sources).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();

const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || !names.includes(name)) {
  const stream = name && !['--help', '-h'].includes(name) ? process.stderr : process.stdout;
  if (name && !['--help', '-h'].includes(name)) stream.write(`example: no example named '${name}'\n`);
  stream.write(`usage: npm run example -- NAME [args...]\nexamples: ${names.join(', ')} (sources in examples/)\n`);
  process.exit(name && !['--help', '-h'].includes(name) ? 2 : 0);
}
if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) {
  process.stderr.write('example: the library is not built (dist/index.js is missing): run `npm ci` or `npm run build`\n');
  process.exit(1);
}

const compiled = path.join(out, `${name}.js`);
const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0);
const stale = names.some((n) => mtime(path.join(out, `${n}.js`)) < mtime(path.join(sources, `${n}.ts`)));
if (stale) {
  try {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.examples.json')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120000,
    });
  } catch (err) {
    process.stderr.write(`example: compiling the examples failed:\n${err.stdout || ''}${err.stderr || ''}${err.stdout || err.stderr ? '' : err.message + '\n'}`);
    if (!fs.existsSync(compiled)) process.exit(1);
  }
}

process.argv = [process.argv[0], compiled, ...args];
require(compiled);
