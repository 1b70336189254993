/**
 * Options accepted anywhere on the command line of every command:
 * --data-dir DIR, --server URL, --token T, --token-file FILE, --json (also
 * --opt=value). They are taken out of argv before commander sees it, so
 * their position never matters (`fleetboot --json host list` =
 * `fleetboot host list --json`). Parsing stops at "--".
 * The environment is read here too, once: FLEETBOOT_TOKEN (empty = unset).
 */
export interface GlobalOptions {
  dataDir: string | null;
  server: string | null;
  /** --token: visible to every local user in `ps`; prefer --token-file or FLEETBOOT_TOKEN. */
  token: string | null;
  tokenFile: string | null;
  /** FLEETBOOT_TOKEN from the environment. */
  envToken: string | null;
  json: boolean;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** End the command with this exit status; the message (if any) is printed as "fleetboot: <message>". */
export class ExitStatus extends Error {
  override readonly name = 'ExitStatus';
  readonly code: number;
  constructor(code: number, message = '') {
    super(message);
    this.code = code;
  }
}

const WITH_VALUE = { '--data-dir': 'dataDir', '--server': 'server', '--token': 'token', '--token-file': 'tokenFile' } as const;
type ValueKey = (typeof WITH_VALUE)[keyof typeof WITH_VALUE];

export function extractGlobalOptions(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): { globals: GlobalOptions; rest: string[] } {
  const envToken = env.FLEETBOOT_TOKEN?.trim();
  const globals: GlobalOptions = { dataDir: null, server: null, token: null, tokenFile: null, envToken: envToken ? envToken : null, json: false };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === '--json') {
      globals.json = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (flag in WITH_VALUE) {
      const key: ValueKey = WITH_VALUE[flag as keyof typeof WITH_VALUE];
      let value: string | undefined;
      if (eq > 0) value = arg.slice(eq + 1);
      else {
        value = argv[i + 1];
        i++;
      }
      if (value === undefined || value === '') throw new UsageError(`option '${flag}' needs a value`);
      globals[key] = value;
      continue;
    }
    rest.push(arg);
  }
  return { globals, rest };
}
