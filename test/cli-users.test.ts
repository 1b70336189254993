/**
 * The real CLI against `fleetboot serve` on 127.0.0.1: the start summary
 * while there is no user, the first admin made with the local admin token
 * (a one-time password on stdout, alone), a user with a password from
 * stdin, roles, per-user tokens (the secret on stdout alone, then used with
 * --token-file, refused above the owner's role and once revoked), sessions,
 * the audit log and the last admin kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { program } from '../src/lib/programs.js';
import { CLI, ROOT, cli, fails, ok, spawnServe, waitUntil, type CliRun } from './cli-helpers.js';

/** `fleetboot ARGS` with `input` on its stdin. */
function cliWithStdin(args: string[], input: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = execFile(program(CLI[0]), [...CLI.slice(1), ...args], { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

test('fleetboot user, token, session and audit commands', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-cli-users-'));
  const dir = join(root, 'data');
  const s = spawnServe(dir);
  try {
    await waitUntil(() => existsSync(join(dir, 'server.json')) && /Users +none yet/.test(s.stderr()), 'the start summary', 30_000, s.server);
    assert.match(s.stderr(), /^  Users      none yet \(there is no default password\): add the first admin, it prints a one-time password:\n +(npx )?fleetboot user add admin --role admin --data-dir /m);
    const d = ['--data-dir', dir];
    const run = (...args: string[]): Promise<CliRun> => cli([...d, ...args]);

    // The first admin, with the local admin token: the one-time password alone on stdout.
    const [first, vic, short] = await Promise.all([
      run('user', 'add', 'admin', '--role', 'admin'),
      cliWithStdin([...d, 'user', 'add', 'vic', '--role', 'viewer', '--password-stdin'], 'vics own password\n'),
      cliWithStdin([...d, 'user', 'add', 'shorty', '--role', 'viewer', '--password-stdin'], 'short\n'),
    ]);
    assert.match(ok(first, 'user add admin').stdout, /^[a-z2-7]{20}\n$/);
    assert.match(first.stderr, /^Added user admin \(admin\)\. Its one-time password, shown this once \(to be changed at the first login\):\n$/);
    assert.equal(ok(vic, 'user add vic --password-stdin').stdout, 'Added user vic (viewer)\n');
    fails(short, 'a short password', /The password must be at least 12 characters long: it has 5 \(HTTP 400\)/);
    const list = await run('user', 'list');
    const [role, badRole] = await Promise.all([run('user', 'role', 'vic', 'operator'), run('user', 'role', 'vic', 'root')]);
    assert.match(ok(list, 'user list').stdout, /^NAME\s+ROLE\s+STATE\s+CREATED\nadmin\s+admin\s+must change password\s+\S+.*\nvic\s+viewer\s+enabled\s+/);
    assert.equal(ok(role, 'user role').stdout, 'User vic is now an operator\n');
    fails(badRole, 'user role root', /Invalid role "root": expected viewer, operator, admin/);
    ok(await run('user', 'role', 'vic', 'viewer'), 'back to viewer');

    // A token for the viewer: the secret alone on stdout; it reads and cannot write.
    const made = ok(await run('token', 'create', 'ci', '--role', 'viewer', '--user', 'vic', '--expires', '30d'), 'token create');
    assert.match(made.stdout, /^fbt_[A-Za-z0-9_-]{43}\n$/);
    assert.match(made.stderr, /^API token #1 'ci' of vic, role viewer, expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\. Its secret, shown this once/);
    const tokenFile = join(root, 'ci.token');
    writeFileSync(tokenFile, made.stdout);
    const info = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as { url: string };
    const asVic = ['--server', info.url, '--token-file', tokenFile];
    const [reads, writes, tooHigh, badExpiry, noUser, tokens] = await Promise.all([
      cli([...asVic, 'host', 'list']),
      cli([...asVic, 'host', 'add', '52:54:00:ab:00:01']),
      run('token', 'create', 'ops', '--role', 'operator', '--user', 'vic'),
      run('token', 'create', 'x', '--role', 'viewer', '--user', 'vic', '--expires', '2y'),
      run('token', 'create', 'x', '--role', 'viewer'),
      run('token', 'list'),
    ]);
    assert.equal(ok(reads, 'a viewer token reads').stdout, 'No hosts.\n');
    fails(writes, 'a viewer token writes', /POST \/api\/v1\/hosts needs the operator role; token ci of vic is a viewer \(HTTP 403\)/);
    fails(tooHigh, 'above the owner', /A token of vic cannot have the role operator: vic is a viewer, and a token's role is at most its owner's \(HTTP 403\)/);
    fails(badExpiry, '--expires 2y', /Invalid --expires "2y": expected a number of days such as 30d \(1d to 3650d\), or never/);
    fails(noUser, 'no --user with the local token', /The local admin token has no user/);
    assert.match(ok(tokens, 'token list').stdout, /^ID\s+USER\s+NAME\s+ROLE\s+STATE\s+EXPIRES\s+LAST USED\s+CREATED\n1\s+vic\s+ci\s+viewer\s+active\s+\d{4}-/);
    assert.match(ok(await run('token', 'revoke', '1'), 'token revoke').stdout, /^Revoked API token #1 'ci' of vic\n$/);
    fails(await cli([...asVic, 'host', 'list']), 'a revoked token', /API token 'ci' of vic was revoked at /);

    // A console session (logged in over HTTP), listed and revoked by a prefix of its id.
    assert.equal(ok(await run('session', 'list'), 'no sessions').stdout, 'No open sessions.\n');
    const login = await fetch(`${info.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vic', password: 'vics own password' }) });
    assert.equal(login.status, 200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const sessions = ok(await run('session', 'list'), 'session list').stdout;
    const m = /^ID\s+USER\s+FROM\s+LOGGED IN\s+LAST SEEN\s+ENDS\s+AGENT\n([0-9a-f]{16})\s+vic\s+127\.0\.0\.1\s+/.exec(sessions);
    assert.ok(m, sessions);
    assert.match(ok(await run('session', 'revoke', (m[1] as string).slice(0, 10)), 'session revoke').stdout, new RegExp(`^Revoked session ${m[1]} of vic\\n$`));
    assert.equal((await fetch(`${info.url}/api/v1/hosts`, { headers: { cookie } })).status, 401, 'the revoked session is refused');

    // The audit log, and the last admin kept.
    fails(await run('user', 'rm', 'admin'), 'rm the last admin', /Cannot delete 'admin': it is the last enabled admin.*\(HTTP 409\)/);
    const audit = ok(await run('audit', '--limit', '30'), 'audit').stdout;
    assert.match(audit, /^ID\s+TIME\s+ACTOR\s+FROM\s+STATUS\s+REQUEST\n/);
    assert.match(audit, /\d+\s+\S+ \S+\s+local admin token\s+127\.0\.0\.1\s+409\s+DELETE \/api\/v1\/users\/admin\n/);
    assert.match(audit, /token ci of vic\s+127\.0\.0\.1\s+403\s+POST \/api\/v1\/hosts\n/);
    assert.match(audit, /login as "vic"\s+127\.0\.0\.1\s+200\s+POST \/api\/v1\/auth\/login\n/);
    const json = JSON.parse(ok(await run('audit', '--json'), 'audit --json').stdout) as { entries: Array<{ summary: unknown }> };
    assert.ok(!JSON.stringify(json).includes('vics own password'), 'no password in the audit log');
  } finally {
    s.server.kill('SIGTERM');
    await new Promise((r) => s.server.once('exit', r));
    rmSync(root, { recursive: true, force: true });
  }
});
