#!/usr/bin/env node
/**
 * `fleetboot-agent`: the endpoint agent of installed machines (not the
 * imaging agent of the boot environment, src/agent/). Runs as root under
 * systemd; node's standard library only, so it bundles alone:
 *   npx esbuild src/endpoint-agent/main.ts --bundle --platform=node --format=esm
 *
 * Commands and exit codes: USAGE below. Errors: one line on stderr.
 */
import { X509Certificate } from 'node:crypto';
import { isMainModule } from '../lib/is-main.js';
import { sameMachine, sha256Hex } from '../model/endpoint.js';
import { EndpointAgent } from './agent.js';
import { enroll } from './enroll.js';
import { AgentError, EXIT } from './errors.js';
import { createAgentLog, errorText, type LogFormat, type LogLevel } from './log.js';
import { LinuxOs } from './os-linux.js';
import { DEFAULT_STATE_DIR, StateDir } from './state.js';
import { agentVersion } from './version.js';

export const USAGE = `usage: fleetboot-agent <command> [options]

  enroll --server URL --ca-sha256 HEX [--token TOKEN] [--state-dir DIR]
        Pin the server's CA (its SHA-256, colons and case ignored), make this
        machine's key and enrol it: bound to its host at once with a token,
        pending until an admin approves it without one.
  run [--state-dir DIR] [--once] [--long-poll]
      [--reboot-command JSON_ARRAY] [--hostname-command JSON_ARRAY]
        Poll the server for work and do it (as root, under systemd). Enrols
        first with DIR/enrol.json ({ server, caSha256, token }) if present.
        --once: one session, one poll, the work and its reports, then exit.
        --long-poll: the server holds each poll open until work arrives.
  status [--state-dir DIR]
        Print what the state directory says (JSON).
  help
        This text.

  Every command also takes --log-format json|plain (default json) and
  --log-level debug|info|warn|error (default info). The default state
  directory is ${DEFAULT_STATE_DIR}.

  Test and site hooks (run): --reboot-command '["touch","/tmp/rebooted"]'
  runs that argv instead of \`systemctl reboot\`; --hostname-command
  '["/usr/local/sbin/set-name"]' runs that argv with the new name appended
  instead of \`hostnamectl set-hostname NAME\`. Lab tests use them so they
  never reboot or rename the machine they run on.

Exit codes: 0 done; 1 failed; 2 usage; 3 not enrolled; 4 the server's CA
does not match --ca-sha256; 5 this agent is revoked (run --once).`;

const COMMON = ['state-dir', 'log-format', 'log-level'];
const COMMANDS: Record<string, { values: readonly string[]; flags: readonly string[] }> = {
  enroll: { values: [...COMMON, 'server', 'ca-sha256', 'token'], flags: [] },
  run: { values: [...COMMON, 'reboot-command', 'hostname-command'], flags: ['once', 'long-poll'] },
  status: { values: COMMON, flags: [] },
  help: { values: [], flags: [] },
};

export interface ParsedArgs {
  command: string;
  values: Map<string, string>;
  flags: Set<string>;
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const [command = 'help', ...rest] = argv;
  const spec = COMMANDS[command === '--help' || command === '-h' ? 'help' : command];
  if (spec === undefined) throw new AgentError('USAGE', `unknown command ${JSON.stringify(command)}: expected enroll, run, status or help`);
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    if (!a.startsWith('--')) throw new AgentError('USAGE', `${command}: unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (spec.flags.includes(name)) {
      if (eq >= 0) throw new AgentError('USAGE', `${command}: --${name} takes no value`);
      flags.add(name);
    } else if (spec.values.includes(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : rest[++i];
      if (v === undefined) throw new AgentError('USAGE', `${command}: --${name} needs a value`);
      values.set(name, v);
    } else {
      throw new AgentError('USAGE', `${command}: unknown option --${name} (options: ${[...spec.values, ...spec.flags].map((o) => `--${o}`).join(', ') || 'none'})`);
    }
  }
  return { command: command === '--help' || command === '-h' ? 'help' : command, values, flags };
}

/** A JSON array of strings (a hook's argv). */
export function parseArgvOption(name: string, text: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(text) as unknown;
  } catch {
    v = null;
  }
  if (!Array.isArray(v) || v.length === 0 || !v.every((x): x is string => typeof x === 'string' && x !== '')) {
    throw new AgentError('USAGE', `--${name} must be a JSON array of strings such as ["touch","/tmp/x"]: current value is ${JSON.stringify(text.slice(0, 120))}`);
  }
  return v;
}

function need(a: ParsedArgs, key: string): string {
  const v = a.values.get(key);
  if (!v) throw new AgentError('USAGE', `${a.command}: --${key} is required`);
  return v;
}

function status(state: StateDir, os: LinuxOs): Record<string, unknown> {
  if (!state.exists()) return { stateDir: state.dir, enrolled: false, note: 'no state directory' };
  state.checkPrivate(state.dir, 'directory');
  const rec = state.readAgent();
  const ca = state.readCa();
  let caSha256: string | null = null;
  if (ca !== null) {
    try {
      caSha256 = sha256Hex(new X509Certificate(ca).raw);
    } catch {
      caSha256 = 'unreadable';
    }
  }
  const enrolFile = state.readEnrolFile();
  const runs = state.markers().map((m) => ({ workId: m.workId, kind: m.item.kind, startedAt: m.startedAt, result: m.result?.status ?? null }));
  return {
    stateDir: state.dir,
    enrolled: rec !== null,
    agentId: rec?.agentId ?? null,
    server: rec?.server ?? enrolFile?.server ?? null,
    state: rec?.state ?? null,
    enrolledAt: rec?.enrolledAt ?? null,
    sameMachine: rec === null ? null : sameMachine(rec.identity, os.identity()),
    caSha256,
    enrolFile: enrolFile === null ? null : { server: enrolFile.server, caSha256: enrolFile.caSha256, token: enrolFile.token === null ? null : 'present' },
    runs,
    agentVersion: agentVersion(),
  };
}

export interface MainIo {
  stdout: (text: string) => void;
  signal?: AbortSignal;
}

export async function main(argv: readonly string[], io: MainIo = { stdout: (t) => void process.stdout.write(t) }): Promise<number> {
  const a = parseArgs(argv);
  if (a.command === 'help') {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  const format = a.values.get('log-format') ?? 'json';
  if (format !== 'json' && format !== 'plain') throw new AgentError('USAGE', `--log-format must be json or plain: current value is ${JSON.stringify(format)}`);
  const level = a.values.get('log-level') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new AgentError('USAGE', `--log-level must be debug, info, warn or error: current value is ${JSON.stringify(level)}`);
  const log = createAgentLog({ format: format as LogFormat, level: level as LogLevel, write: io.stdout });
  const state = new StateDir(a.values.get('state-dir') ?? DEFAULT_STATE_DIR);
  const rebootCommand = a.values.has('reboot-command') ? parseArgvOption('reboot-command', a.values.get('reboot-command') as string) : null;
  const hostnameCommand = a.values.has('hostname-command') ? parseArgvOption('hostname-command', a.values.get('hostname-command') as string) : null;
  const os = new LinuxOs({ agentVersion: agentVersion(), log, rebootCommand, hostnameCommand });
  switch (a.command) {
    case 'status':
      io.stdout(`${JSON.stringify(status(state, os), null, 2)}\n`);
      return EXIT.ok;
    case 'enroll': {
      const rec = await enroll({ server: need(a, 'server'), caSha256: need(a, 'ca-sha256'), token: a.values.get('token') ?? null, state, os, log });
      log.info(`enrolled as ${rec.agentId} (${rec.state})`, { stateDir: state.dir });
      return EXIT.ok;
    }
    case 'run': {
      const agent = new EndpointAgent({
        state,
        os,
        log,
        once: a.flags.has('once'),
        longPoll: a.flags.has('long-poll'),
        ...(io.signal ? { signal: io.signal } : {}),
        ...(rebootCommand ? { rebootPauseMs: 0 } : {}),
      });
      try {
        if (a.flags.has('once')) await agent.once();
        else await agent.run();
      } finally {
        agent.close();
      }
      return EXIT.ok;
    }
    default:
      throw new AgentError('USAGE', `unknown command ${a.command}`);
  }
}

/** The exit code and the stderr line of an error. */
export function failure(err: unknown): { code: number; line: string } {
  const msg = (errorText(err).split('\n')[0] ?? 'failed').trim() || 'failed';
  if (err instanceof AgentError) return { code: err.exitCode, line: `fleetboot-agent: ${msg}${err.code === 'USAGE' ? ' (see: fleetboot-agent help)' : ''}` };
  return { code: EXIT.failed, line: `fleetboot-agent: ${msg}` };
}

/** Run as the program: process.argv, SIGINT/SIGTERM stop it, exit with its code. (bin/fleetboot-agent.js calls this.) */
export function runAsProgram(): void {
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => ac.abort());
  main(process.argv.slice(2), { stdout: (t) => void process.stdout.write(t), signal: ac.signal }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const f = failure(err);
      process.stderr.write(`${f.line}\n`);
      process.exit(f.code);
    },
  );
}

if (isMainModule(import.meta.url)) runAsProgram();
