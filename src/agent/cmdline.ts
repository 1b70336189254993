/**
 * Argument parsing for the agent (no commander: the bundle stays small) and
 * the kernel command line the boot environment hands it.
 */
import { CMDLINE } from '../imaging/protocol.js';
import { AgentError } from './errors.js';

/**
 * Split a kernel command line into key -> value, as the kernel does: words
 * separated by white space, double quotes protect spaces and are removed
 * (`"a=b c"` and `a="b c"` both give a -> "b c"). A word without "=" maps to
 * "". A key given twice keeps the last value.
 */
export function parseKernelCmdline(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let word = '';
  let inQ = false;
  let any = false;
  const flush = (): void => {
    if (any) {
      const eq = word.indexOf('=');
      if (eq < 0) out.set(word, '');
      else out.set(word.slice(0, eq), word.slice(eq + 1));
    }
    word = '';
    any = false;
  };
  for (const c of text) {
    if (c === '"') {
      inQ = !inQ;
      any = true;
    } else if (!inQ && /\s/.test(c)) flush();
    else {
      word += c;
      any = true;
    }
  }
  flush();
  return out;
}

export interface BootParams {
  url: string;
  task: number;
  token: string;
  disk: string | null;
}

/** The fleetboot.* values the agent needs, from a parsed command line. */
export function bootParams(cmdline: Map<string, string>): BootParams {
  const url = cmdline.get(CMDLINE.url);
  const task = cmdline.get(CMDLINE.task);
  const token = cmdline.get(CMDLINE.token);
  const missing: string[] = [];
  if (!url) missing.push(CMDLINE.url);
  if (!task) missing.push(CMDLINE.task);
  if (!token) missing.push(CMDLINE.token);
  if (missing.length) throw new AgentError(`the kernel command line lacks ${missing.join(', ')}`);
  const n = Number(task);
  if (!Number.isSafeInteger(n) || n < 1) throw new AgentError(`${CMDLINE.task}=${String(task)} is not a task number`);
  const disk = cmdline.get(CMDLINE.disk);
  return { url: url as string, task: n, token: token as string, disk: disk ? disk : null };
}

export interface ParsedArgs {
  command: string;
  flags: Map<string, string>;
}

/**
 * `<command> --key value --key=value ...`. Only flags in `allowed[command]`
 * are accepted; every flag takes a value. Throws a usage AgentError.
 */
export function parseArgs(argv: readonly string[], allowed: Record<string, readonly string[]>): ParsedArgs {
  const [command, ...rest] = argv;
  if (!command || command.startsWith('-')) throw new UsageError('no command given');
  const known = allowed[command];
  if (!known) throw new UsageError(`unknown command ${command}`);
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument ${a}`);
    let key = a.slice(2);
    let value: string | undefined;
    const eq = key.indexOf('=');
    if (eq >= 0) {
      value = key.slice(eq + 1);
      key = key.slice(0, eq);
    } else {
      value = rest[i + 1];
      i++;
    }
    if (!known.includes(key)) throw new UsageError(`${command}: unknown option --${key}`);
    if (value === undefined) throw new UsageError(`${command}: --${key} needs a value`);
    flags.set(key, value);
  }
  return { command, flags };
}

export class UsageError extends AgentError {
  override name = 'UsageError';
}
