/**
 * Options accepted anywhere on the command line of every command:
 * --data-dir DIR, --server URL, --token T, --json (also --opt=value).
 * They are taken out of argv before commander sees it, so their position
 * never matters (`fleetboot --json host list` = `fleetboot host list --json`).
 * Parsing stops at "--".
 */
export interface GlobalOptions {
  dataDir: string | null;
  server: string | null;
  token: string | null;
  json: boolean;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const WITH_VALUE = { '--data-dir': 'dataDir', '--server': 'server', '--token': 'token' } as const;
type ValueKey = (typeof WITH_VALUE)[keyof typeof WITH_VALUE];

export function extractGlobalOptions(argv: readonly string[]): { globals: GlobalOptions; rest: string[] } {
  const globals: GlobalOptions = { dataDir: null, server: null, token: null, json: false };
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
