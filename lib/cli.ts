#!/usr/bin/env node
/**
 * The `fanotify` command: `fanotify demo`, `fanotify watch PATH...`,
 * `fanotify stats PATH...`. Each command lives in lib/cli/<name>.ts.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { EXIT, UsageError, report } from './cli/common';
import * as demo from './cli/demo';
import * as stats from './cli/stats';
import * as watch from './cli/watch';

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = { demo, watch, stats };

function version(): string {
  try {
    return JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

export const HELP = `Usage: fanotify COMMAND [options]

Linux fanotify from the command line.

Commands:
  demo                     start here: ${demo.summary}
  watch PATH... [options]  ${watch.summary}
  stats PATH... [options]  ${stats.summary}

Run 'fanotify COMMAND --help' for the options of one command, e.g.
  fanotify watch /srv/data --events create,delete --json

Exit codes:
  0  done (also when stopped with Ctrl-C or SIGTERM)
  1  runtime error
  2  usage error: unknown command or option, bad value, unknown event name
  3  not permitted: the message names the capability needed (run as root)
  4  not supported: kernel too old, or a feature this kernel or filesystem lacks
  5  no such path (or not a directory where one is needed)

Marks of type mount or filesystem, and permission events, need CAP_SYS_ADMIN.
As a normal user (Linux 5.13 or later) you can watch files and directories you
can read. See the README for the library this command is built on.`;

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    if (first === 'help' && rest[0] && COMMANDS[rest[0]]) {
      process.stdout.write(COMMANDS[rest[0]].usage + '\n');
      return EXIT.OK;
    }
    (first === undefined ? process.stderr : process.stdout).write(HELP + '\n');
    return first === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(version() + '\n');
    return EXIT.OK;
  }
  const command = COMMANDS[first];
  if (!command) return report('', new UsageError(`unknown command '${first}' (commands: ${Object.keys(COMMANDS).join(', ')})`));
  try {
    return await command.run(rest);
  } catch (err) {
    // node:util parseArgs: unknown option, missing value...
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return report(first, new UsageError((err as Error).message));
    return report(first, err);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.exitCode = report('', err);
    },
  );
}
