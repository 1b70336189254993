/**
 * Access commands: `user add|list|rm|passwd|role|disable|enable`, `token
 * create|list|revoke`, `session list|revoke`, `audit`. They speak only the
 * HTTP API (/api/v1/users, tokens, sessions, audit), with the local admin
 * token as every command does: so the first admin is made while the server
 * runs, before any user exists (`fleetboot user add admin --role admin`).
 *
 * Secrets go to stdout alone (a generated password, a new token), so
 * `fleetboot token create ci --role viewer --user alice > ci.token` keeps
 * only the secret; what they are goes to stderr. `--password-stdin` reads
 * a password from a pipe (one trailing newline is dropped).
 */
import type { Command } from 'commander';
import { aRole, ROLES, isRole, type Role } from '../model/roles.js';
import type { ApiToken, ApiTokenList, AuditPage, CreatedApiToken, DeletedUser, RevokedApiToken, RevokedSession, Session, SessionList, User, UserAndPassword, UserList } from '../http/schemas/index.js';
import { connect, CliError, type ApiClient } from './client.js';
import type { GlobalOptions } from './globals.js';
import { time } from './imaging.js';
import { printJson, printLine, printTable } from './output.js';

function roleArg(raw: string): Role {
  if (!isRole(raw)) throw new CliError(`Invalid role ${JSON.stringify(raw)}: expected ${ROLES.join(', ')}`);
  return raw;
}

/** `--expires`: "30d" -> 30, "never" -> null, undefined -> undefined (the server's default, 90 days). */
export function parseExpiry(raw: string | undefined): number | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'never') return null;
  const m = /^([1-9][0-9]{0,3})d$/.exec(raw);
  if (!m) throw new CliError(`Invalid --expires ${JSON.stringify(raw)}: expected a number of days such as 30d (1d to 3650d), or never`);
  return Number(m[1]);
}

/** The whole of stdin, without one trailing newline; refused on a terminal (it would echo the password). */
export async function readPasswordFromStdin(stdin: NodeJS.ReadStream = process.stdin): Promise<string> {
  if (stdin.isTTY) throw new CliError('--password-stdin reads the password from a pipe, not a terminal: printf %s "$PASSWORD" | fleetboot ... --password-stdin');
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (text === '') throw new CliError('--password-stdin: stdin was empty');
  return text;
}

function userState(u: User): string {
  if (u.disabledAt !== null) return `disabled ${time(u.disabledAt) ?? ''}`.trim();
  return u.mustChangePassword ? 'must change password' : 'enabled';
}

function tokenState(t: ApiToken, now: number): string {
  if (t.revokedAt !== null) return 'revoked';
  if (t.expiresAt !== null && Date.parse(t.expiresAt) <= now) return 'expired';
  return 'active';
}

/** Print a generated password (stdout, alone) and what it is (stderr). */
function printSecret(globals: GlobalOptions, json: unknown, secret: string, about: string): void {
  if (globals.json) {
    printJson(json);
    return;
  }
  process.stderr.write(`${about}\n`);
  printLine(secret);
}

export function registerUserCommands(program: Command, globals: GlobalOptions): void {
  const api = (): Promise<ApiClient> => connect(globals);
  const userPath = (name: string): string => `/users/${encodeURIComponent(name)}`;

  // ---- user
  const user = program.command('user').description('users of the API and the console, with their roles: viewer (reads), operator (runs the fleet), admin (users, settings, deletes)');
  user
    .command('add')
    .description('add a user; without --password-stdin a one-time password is generated and printed once (it must be changed at the first login)')
    .argument('<name>', 'user name: letters, digits, . _ - (up to 64)')
    .requiredOption('--role <role>', `${ROLES.join(', ')}`)
    .option('--password-stdin', 'read the password from stdin (at least 12 characters)')
    .action(async (name: string, opts: { role: string; passwordStdin?: boolean }) => {
      const role = roleArg(opts.role);
      const password = opts.passwordStdin ? await readPasswordFromStdin() : undefined;
      const r = await (await api()).request<UserAndPassword>('POST', '/users', { name, role, ...(password !== undefined ? { password } : {}) });
      if (r.password !== undefined) {
        printSecret(globals, r, r.password, `Added user ${r.user.name} (${r.user.role}). Its one-time password, shown this once (to be changed at the first login):`);
      } else if (globals.json) printJson(r);
      else printLine(`Added user ${r.user.name} (${r.user.role})`);
    });
  user
    .command('list')
    .alias('ls')
    .description('list users')
    .action(async () => {
      const { users } = await (await api()).request<UserList>('GET', '/users');
      if (globals.json) printJson(users);
      else printTable(['NAME', 'ROLE', 'STATE', 'CREATED'], users.map((u) => [u.name, u.role, userState(u), time(u.createdAt)]), 'No users (add the first admin: fleetboot user add NAME --role admin).');
    });
  user
    .command('rm')
    .alias('remove')
    .description('delete a user with its sessions and API tokens (refused for the last enabled admin)')
    .argument('<name>')
    .action(async (name: string) => {
      const r = await (await api()).request<DeletedUser>('DELETE', userPath(name));
      if (globals.json) printJson(r);
      else printLine(`Deleted user ${r.deleted.name}`);
    });
  user
    .command('passwd')
    .description("set a user's password (its sessions end); without --password-stdin a one-time password is generated and printed once")
    .argument('<name>')
    .option('--password-stdin', 'read the new password from stdin (at least 12 characters)')
    .action(async (name: string, opts: { passwordStdin?: boolean }) => {
      const password = opts.passwordStdin ? await readPasswordFromStdin() : undefined;
      const r = await (await api()).request<UserAndPassword>('POST', `${userPath(name)}/password`, password !== undefined ? { password } : {});
      if (r.password !== undefined) printSecret(globals, r, r.password, `New one-time password of ${r.user.name}, shown this once (to be changed at the next login):`);
      else if (globals.json) printJson(r);
      else printLine(`Set the password of ${r.user.name}; its sessions have ended`);
    });
  user
    .command('role')
    .description("change a user's role (at once, for its sessions and tokens too; refused for the last enabled admin)")
    .argument('<name>')
    .argument('<role>', ROLES.join(', '))
    .action(async (name: string, raw: string) => {
      const u = await (await api()).request<User>('PATCH', userPath(name), { role: roleArg(raw) });
      if (globals.json) printJson(u);
      else printLine(`User ${u.name} is now ${aRole(u.role)}`);
    });
  for (const [verb, disabled] of [['disable', true], ['enable', false]] as const) {
    user
      .command(verb)
      .description(disabled ? 'disable a user: it cannot log in, its sessions end, its API tokens are refused (refused for the last enabled admin)' : 'enable a disabled user again')
      .argument('<name>')
      .action(async (name: string) => {
        const u = await (await api()).request<User>('PATCH', userPath(name), { disabled });
        if (globals.json) printJson(u);
        else printLine(`User ${u.name} is ${disabled ? 'disabled' : 'enabled'}`);
      });
  }

  // ---- token
  const token = program.command('token').description("per-user API tokens: named, with a role at most their owner's and an expiry; the secret is shown once");
  token
    .command('create')
    .description('make an API token and print its secret (once: only its hash is kept)')
    .argument('<name>', 'token name: letters, digits, . _ - (up to 64; unique per user)')
    .requiredOption('--role <role>', `${ROLES.join(', ')} (at most the owner's)`)
    .option('--expires <when>', 'how long it lasts: Nd (days, 1d-3650d) or never (default 90d)')
    .option('--user <name>', "the owner (the local admin token has no user of its own: required with it)")
    .action(async (name: string, opts: { role: string; expires?: string; user?: string }) => {
      const expiresInDays = parseExpiry(opts.expires);
      const r = await (await api()).request<CreatedApiToken>('POST', '/tokens', {
        name,
        role: roleArg(opts.role),
        ...(opts.user !== undefined ? { user: opts.user } : {}),
        ...(expiresInDays !== undefined ? { expiresInDays } : {}),
      });
      const t = r.token;
      printSecret(
        globals,
        r,
        r.secret,
        `API token #${t.id} '${t.name}' of ${t.user}, role ${t.role}, ${t.expiresAt === null ? 'never expires' : `expires ${time(t.expiresAt) ?? ''}`}. Its secret, shown this once (send it as "Authorization: Bearer <secret>"; this CLI: --token-file FILE or FLEETBOOT_TOKEN):`,
      );
    });
  token
    .command('list')
    .alias('ls')
    .description("list API tokens (yours; an admin's or the local admin token's: everyone's)")
    .option('--user <name>', "only this user's")
    .option('--all', 'revoked ones too')
    .action(async (opts: { user?: string; all?: boolean }) => {
      const q = new URLSearchParams();
      if (opts.user !== undefined) q.set('user', opts.user);
      if (opts.all) q.set('revoked', 'true');
      const { tokens } = await (await api()).request<ApiTokenList>('GET', `/tokens${q.toString() ? `?${q.toString()}` : ''}`);
      const now = Date.now();
      if (globals.json) printJson(tokens);
      else
        printTable(
          ['ID', 'USER', 'NAME', 'ROLE', 'STATE', 'EXPIRES', 'LAST USED', 'CREATED'],
          tokens.map((t) => [String(t.id), t.user, t.name, t.role, tokenState(t, now), t.expiresAt === null ? 'never' : time(t.expiresAt), time(t.lastUsedAt), time(t.createdAt)]),
          'No API tokens.',
        );
    });
  token
    .command('revoke')
    .description('revoke an API token (at once)')
    .argument('<id>')
    .action(async (raw: string) => {
      if (!/^[1-9][0-9]{0,9}$/.test(raw)) throw new CliError(`Invalid token id ${JSON.stringify(raw)}: expected the number fleetboot token list shows`);
      const r = await (await api()).request<RevokedApiToken>('DELETE', `/tokens/${raw}`);
      if (globals.json) printJson(r);
      else printLine(`Revoked API token #${r.revoked.id} '${r.revoked.name}' of ${r.revoked.user}`);
    });

  // ---- session
  const session = program.command('session').description('console login sessions');
  session
    .command('list')
    .alias('ls')
    .description("open sessions (yours; an admin's or the local admin token's: everyone's)")
    .option('--user <name>', "only this user's")
    .action(async (opts: { user?: string }) => {
      const { sessions } = await (await api()).request<SessionList>('GET', `/sessions${opts.user !== undefined ? `?user=${encodeURIComponent(opts.user)}` : ''}`);
      if (globals.json) printJson(sessions);
      else
        printTable(
          ['ID', 'USER', 'FROM', 'LOGGED IN', 'LAST SEEN', 'ENDS', 'AGENT'],
          sessions.map((s) => [s.id.slice(0, 16), s.user, s.ip, time(s.createdAt), time(s.lastSeenAt), time(s.idleExpiresAt), s.userAgent === null ? null : s.userAgent.slice(0, 40)]),
          'No open sessions.',
        );
    });
  session
    .command('revoke')
    .description('end a session (the ID from session list: its first 8 or more characters are enough)')
    .argument('<id>')
    .action(async (raw: string) => {
      const client = await api();
      const prefix = raw.toLowerCase();
      if (!/^[0-9a-f]{8,64}$/.test(prefix)) throw new CliError(`Invalid session id ${JSON.stringify(raw)}: expected 8 to 64 hex digits, as fleetboot session list shows`);
      let id = prefix;
      if (prefix.length < 64) {
        const { sessions } = await client.request<SessionList>('GET', '/sessions');
        const matches = sessions.filter((s) => s.id.startsWith(prefix));
        if (matches.length === 0) throw new CliError(`No open session starts with ${prefix} (fleetboot session list)`);
        if (matches.length > 1) throw new CliError(`${matches.length} sessions start with ${prefix}: give more of the ID`);
        id = (matches[0] as Session).id;
      }
      const r = await client.request<RevokedSession>('DELETE', `/sessions/${id}`);
      if (globals.json) printJson(r);
      else printLine(`Revoked session ${r.revoked.id.slice(0, 16)} of ${r.revoked.user}`);
    });

  // ---- audit
  program
    .command('audit')
    .description('the audit log: every change asked through the API, newest first (admin)')
    .option('--limit <n>', 'at most this many (1-1000, default 50)')
    .option('--before <id>', 'only entries older than this one (paging)')
    .action(async (opts: { limit?: string; before?: string }) => {
      const q = new URLSearchParams({ limit: opts.limit ?? '50' });
      if (opts.before !== undefined) {
        if (!/^[1-9][0-9]{0,12}$/.test(opts.before)) throw new CliError(`Invalid --before ${JSON.stringify(opts.before)}: expected an entry's ID`);
        q.set('before', opts.before);
      }
      if (!/^[1-9][0-9]{0,3}$/.test(q.get('limit') ?? '')) throw new CliError(`Invalid --limit ${JSON.stringify(opts.limit)}: expected 1 to 1000`);
      const r = await (await api()).request<AuditPage>('GET', `/audit?${q.toString()}`);
      if (globals.json) {
        printJson(r);
        return;
      }
      printTable(
        ['ID', 'TIME', 'ACTOR', 'FROM', 'STATUS', 'REQUEST'],
        r.entries.map((e) => [String(e.id), time(e.at), e.actor, e.ip, String(e.status), `${e.method} ${e.url}`]),
        'The audit log is empty.',
      );
      if (r.nextBefore !== null) printLine(`(older: fleetboot audit --before ${r.nextBefore})`);
    });
}
