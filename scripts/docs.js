#!/usr/bin/env node
// `npm run docs`: the API reference, generated from the doc comments of the
// declarations tsc emits (dist/*.d.ts), into docs/api/ (which git ignores):
// README.md (an index) and one Markdown page per entry point of the package
// ("fanotify", "fanotify/low-level" and "fanotify/watcher").
//
// Why not typedoc: it loads TypeScript's JavaScript compiler API, and the
// compiler here (typescript@7, the native one) has none; typedoc 0.28 accepts
// TypeScript up to 6.0 as a peer, which would put a second TypeScript next to
// the one that builds the package. The .d.ts files tsc writes are regular
// (one declaration per statement, four-space indented members, doc comments
// kept), so a small parser of them is enough and needs no dependency. What
// users see in their editor is exactly what this documents.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const outDir = path.resolve(root, process.argv[2] || path.join('docs', 'api'));

const ENTRIES = [
  { module: 'fanotify', file: 'index.d.ts', page: 'fanotify.md' },
  { module: 'fanotify/low-level', file: 'low-level.d.ts', page: 'low-level.md' },
  { module: 'fanotify/watcher', file: 'watcher.d.ts', page: 'watcher.md' },
];

/** Removes string literals and comments so that brackets can be counted. */
function code(line) {
  return line
    .replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, '""')
    .replace(/\/\*.*?\*\//g, '')
    .replace(/\/\/.*$/, '');
}

function depthChange(line) {
  let d = 0;
  for (const c of code(line)) {
    if (c === '{' || c === '(' || c === '[') d++;
    else if (c === '}' || c === ')' || c === ']') d--;
  }
  return d;
}

/** The text of a /** *\/ comment: stars and tags handled, @internal noted. */
function docText(lines) {
  const text = lines
    .join('\n')
    .replace(/^\s*\/\*\*\s?/, '')
    .replace(/\s*\*\/\s*$/, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim();
  return { text: text.replace(/@internal\s*/g, '').trim(), internal: /@internal\b/.test(text) };
}

/**
 * Splits declaration text into statements, each with the doc comment just
 * before it: [{ doc, lines }]. `lines` are de-indented by `indent` spaces.
 */
function statements(lines, indent = 0) {
  const out = [];
  let doc = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].slice(indent);
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('/**')) {
      const block = [line];
      while (!lines[i].includes('*/')) block.push(lines[++i].slice(indent));
      doc = docText(block);
      continue;
    }
    if (trimmed.startsWith('//')) continue;
    const stmt = [line];
    let depth = depthChange(line);
    while (!(depth <= 0 && /[;}]\s*$/.test(code(stmt[stmt.length - 1]).trim())) && i + 1 < lines.length) {
      const next = lines[++i].slice(indent);
      stmt.push(next);
      depth += depthChange(next);
    }
    out.push({ doc, lines: stmt });
    doc = null;
  }
  return out;
}

const DECL = /^export\s+(?:declare\s+)?(?:abstract\s+)?(class|interface|type|function|const|let|enum|namespace)\s+([A-Za-z_$][\w$]*)/;

/** Everything one .d.ts file declares and re-exports. */
function parseFile(file) {
  const text = fs.readFileSync(file, 'utf8');
  const decls = new Map();
  const reexports = [];
  const namespaces = new Map();
  const localExports = [];
  for (const stmt of statements(text.split('\n'))) {
    const first = stmt.lines[0];
    const whole = stmt.lines.join('\n');
    let m;
    if ((m = DECL.exec(first))) {
      const [, kind, name] = m;
      if (stmt.doc?.internal) continue;
      const decl = decls.get(name);
      // Overloads: keep every signature, and the first documented comment.
      if (decl && kind === 'function') {
        decl.lines.push(...stmt.lines);
        decl.doc = decl.doc || stmt.doc;
      } else {
        decls.set(name, { kind, name, doc: stmt.doc, lines: stmt.lines });
      }
    } else if ((m = /^export\s+(type\s+)?\{([^}]*)\}\s*from\s*'([^']+)'/.exec(whole))) {
      reexports.push({ names: parseNames(m[2]), from: m[3] });
    } else if ((m = /^import\s+\*\s+as\s+(\w+)\s+from\s+'([^']+)'/.exec(first))) {
      namespaces.set(m[1], m[2]);
    } else if ((m = /^export\s+\{([^}]*)\};?$/.exec(whole.trim()))) {
      localExports.push(...parseNames(m[1]));
    }
  }
  return { decls, reexports, namespaces, localExports };
}

function parseNames(list) {
  return list
    .split(',')
    .map((s) => s.trim().replace(/^type\s+/, ''))
    .filter(Boolean)
    .map((s) => {
      const [name, alias] = s.split(/\s+as\s+/);
      return { name, alias: alias || name };
    });
}

const parsed = new Map();
function parse(file) {
  if (!parsed.has(file)) parsed.set(file, parseFile(file));
  return parsed.get(file);
}

function resolveFile(from, spec) {
  return path.resolve(path.dirname(from), spec.replace(/\.js$/, '') + '.d.ts');
}

/** Finds the declaration `name` exported by `file`, following re-exports. */
function findDecl(file, name, seen = new Set()) {
  if (seen.has(file + '#' + name)) return null;
  seen.add(file + '#' + name);
  const f = parse(file);
  if (f.decls.has(name)) return f.decls.get(name);
  for (const r of f.reexports) {
    const hit = r.names.find((n) => n.alias === name);
    if (hit) return findDecl(resolveFile(file, r.from), hit.name, seen);
  }
  return null;
}

/** The exports of an entry point, in order: [{ name, decl | namespace }]. */
function exportsOf(file) {
  const f = parse(file);
  const out = [];
  const seen = new Set();
  const add = (item) => {
    if (!seen.has(item.name)) {
      seen.add(item.name);
      out.push(item);
    }
  };
  const text = fs.readFileSync(file, 'utf8');
  // Keep the order of the file: walk its statements again.
  for (const stmt of statements(text.split('\n'))) {
    const first = stmt.lines[0];
    const whole = stmt.lines.join('\n');
    let m;
    if ((m = DECL.exec(first))) {
      const decl = f.decls.get(m[2]);
      if (decl) add({ name: m[2], decl });
    } else if ((m = /^export\s+(type\s+)?\{([^}]*)\}\s*from\s*'([^']+)'/.exec(whole))) {
      for (const n of parseNames(m[2])) {
        const decl = findDecl(resolveFile(file, m[3]), n.name);
        if (decl && !decl.doc?.internal) add({ name: n.alias, decl });
      }
    } else if ((m = /^export\s+\{([^}]*)\};?$/.exec(whole.trim()))) {
      for (const n of parseNames(m[1])) {
        if (f.namespaces.has(n.name)) add({ name: n.alias, namespace: resolveFile(file, f.namespaces.get(n.name)) });
        else if (f.decls.has(n.name)) add({ name: n.alias, decl: f.decls.get(n.name) });
      }
    }
  }
  return out;
}

/** Members of a class or interface: [{ signature, doc }], private and internal ones left out. */
function members(decl) {
  const start = decl.lines.findIndex((l) => /\{\s*$/.test(code(l)));
  if (start < 0) return [];
  const body = decl.lines.slice(start + 1, decl.lines.length - 1);
  return statements(body, 4)
    .filter((s) => !s.doc?.internal)
    .map((s) => ({ signature: s.lines.join('\n'), doc: s.doc?.text || '' }))
    .filter((m) => !/^(#private|private\s)/.test(m.signature.trim()));
}

function header(decl) {
  const start = decl.lines.findIndex((l) => /\{\s*$/.test(code(l)));
  return decl.lines
    .slice(0, start + 1)
    .join(' ')
    .replace(/\s*\{\s*$/, '')
    .replace(/^export\s+(declare\s+)?/, '');
}

function firstSentence(text) {
  if (!text) return '';
  const para = text.split(/\n\s*\n/)[0].replace(/\s+/g, ' ');
  const m = /^(.*?[.!?])(\s|$)/.exec(para);
  return m ? m[1] : para;
}

/** GitHub's heading anchors: lower case, and -1, -2... for repeats on a page. */
function anchors(names) {
  const used = new Map();
  const out = new Map();
  for (const name of names) {
    const base = name.toLowerCase().replace(/[^a-z0-9_-]/g, '');
    const n = used.get(base) ?? 0;
    used.set(base, n + 1);
    out.set(name, n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function isLiteralConst(decl) {
  return decl.kind === 'const' && decl.lines.length === 1 && /:\s*-?\d+;$/.test(decl.lines[0]);
}

function renderDecl(item) {
  const { name } = item;
  if (item.namespace) {
    const target = ENTRIES.find((e) => path.join(dist, e.file) === item.namespace);
    return `### ${name}\n\n*namespace* — the module \`${target ? target.module : item.namespace}\`, also exported here; see [${target ? target.page : 'its page'}](${target ? target.page : '#'}).\n`;
  }
  const { decl } = item;
  const parts = [`### ${name}`, '', `*${decl.kind}*`, ''];
  if (decl.doc?.text) parts.push(decl.doc.text, '');
  if (decl.kind === 'class' || decl.kind === 'interface') {
    parts.push('```ts', header(decl), '```', '');
    const list = members(decl);
    if (list.length) {
      parts.push('| member | description |', '|---|---|');
      for (const m of list) {
        const sig = m.signature.replace(/\s+/g, ' ').replace(/\|/g, '\\|');
        parts.push(`| \`${sig}\` | ${m.doc.replace(/\s+/g, ' ').replace(/\|/g, '\\|')} |`);
      }
      parts.push('');
    }
  } else {
    parts.push('```ts', decl.lines.join('\n').replace(/^export\s+(declare\s+)?/, ''), '```', '');
  }
  return parts.join('\n');
}

function renderPage(entry) {
  const file = path.join(dist, entry.file);
  const items = exportsOf(file);
  const out = [`# \`${entry.module}\``, '', `Generated by \`npm run docs\` from \`dist/${entry.file}\` and the files it re-exports.`, ''];
  const constants = items.filter((i) => i.decl && isLiteralConst(i.decl));
  const rest = items.filter((i) => !constants.includes(i));
  // Headings in page order: 'Contents', 'Exports', each export, then 'Constants'.
  const ids = anchors(['Contents', 'Exports', ...rest.map((i) => i.name), 'Constants']);
  out.push('## Contents', '');
  for (const i of rest) out.push(`- [${i.name}](#${ids.get(i.name)}) — ${firstSentence(i.decl?.doc?.text) || (i.namespace ? 'namespace' : i.decl.kind)}`);
  if (constants.length) out.push(`- [Constants](#constants) — ${constants.length} kernel constants`);
  out.push('', '## Exports', '');
  for (const i of rest) out.push(renderDecl(i));
  if (constants.length) {
    out.push('## Constants', '', 'Kernel values, as in `<linux/fanotify.h>` (also those newer than most headers).', '', '| name | value |', '|---|---|');
    for (const c of constants) out.push(`| \`${c.name}\` | ${/:\s*(-?\d+);$/.exec(c.decl.lines[0])[1]} |`);
    out.push('');
  }
  return { text: out.join('\n'), items, ids };
}

function main() {
  for (const e of ENTRIES) {
    if (!fs.existsSync(path.join(dist, e.file))) {
      process.stderr.write(`docs: dist/${e.file} is missing: build first (npm ci, or npm run build:ts)\n`);
      process.exit(1);
    }
  }
  fs.mkdirSync(outDir, { recursive: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const index = [`# API reference: ${pkg.name} ${pkg.version}`, '', 'Generated by `npm run docs` from the doc comments of the TypeScript declarations (`dist/*.d.ts`). The user guide is the README.', ''];
  let total = 0;
  for (const e of ENTRIES) {
    const { text, items, ids } = renderPage(e);
    fs.writeFileSync(path.join(outDir, e.page), text);
    total += items.length;
    index.push(`## [\`${e.module}\`](${e.page})`, '');
    for (const i of items.filter((x) => !(x.decl && isLiteralConst(x.decl)))) {
      index.push(`- [${i.name}](${e.page}#${ids.get(i.name)}) — ${firstSentence(i.decl?.doc?.text) || (i.namespace ? 'namespace' : i.decl.kind)}`);
    }
    const consts = items.filter((x) => x.decl && isLiteralConst(x.decl)).length;
    if (consts) index.push(`- [${consts} constants](${e.page}#constants)`);
    index.push('');
  }
  fs.writeFileSync(path.join(outDir, 'README.md'), index.join('\n'));
  process.stdout.write(`docs: wrote ${path.relative(process.cwd(), outDir) || '.'}/README.md and ${ENTRIES.map((e) => e.page).join(', ')} (${total} exports)\n`);
}

main();
