/** Child processes for tests: always time-limited, always reaped. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningChild {
  child: ChildProcess;
  pid: number;
  /** Resolves when it exits; kills it (SIGKILL) if it outlives `timeoutMs`. */
  done: Promise<ChildResult>;
}

const live = new Set<ChildProcess>();

export function startChild(command: string, args: string[], timeoutMs = 10000, options: SpawnOptions = {}): RunningChild {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return { child, pid: child.pid, done };
}

export function runChild(command: string, args: string[], timeoutMs = 10000, options: SpawnOptions = {}): Promise<ChildResult> {
  return startChild(command, args, timeoutMs, options).done;
}

/** A small Node program run in a child: `code` gets `process.argv[2...]`. */
export function startNode(code: string, args: string[] = [], timeoutMs = 10000, options: SpawnOptions = {}): RunningChild {
  return startChild(process.execPath, ['-e', code, ...args], timeoutMs, options);
}

/** Kills every child a test left running (use in afterAll). */
export function reapAll(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Node code that reads the file named by argv[1] and prints 'ok' or the error code. */
export const READ_FILE = `
const fs = require('fs');
try { fs.readFileSync(process.argv[1]); console.log('ok'); }
catch (e) { console.log(e.code || String(e)); }
`;
