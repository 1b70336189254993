/**
 * The endpoint agent's Debian package, built once by
 * scripts/build-agent-deb.sh (xz level 1: the test checks what is inside,
 * not how hard it is packed) from src/endpoint-agent/main.ts, or from a
 * stub entry point written here while that file is not in the tree.
 *
 * - dpkg-deb reads it: the control fields, Depends naming the package of
 *   every library the shipped node links (ldd), the maintainer scripts;
 * - its contents are exactly the expected paths, root:root, 0755/0644, and
 *   md5sums matches them;
 * - the wrapper runs the bundled agent on the package's own node (`help`);
 * - `systemd-analyze verify --root=TREE` passes on the unit, where TREE is
 *   this machine's unit files with the package unpacked over them (so
 *   ExecStart's program is the package's, and the targets it names exist),
 *   and fails on a unit with a misspelt key or a missing ExecStart program;
 * - lintian finds nothing but what the package's overrides explain.
 *
 * Skipped only when dpkg-deb is missing; systemd-analyze and lintian come
 * with `scripts/install-deps.sh --with-test`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { program, type ProgramName } from '../src/lib/programs.js';

const ROOT = new URL('..', import.meta.url).pathname;
const PKG = 'fleetboot-agent';
const UNIT = `lib/systemd/system/${PKG}.service`;
const REAL_ENTRY = join(ROOT, 'src/endpoint-agent/main.ts');

function isInstalled(name: ProgramName): boolean {
  return spawnSync(program(name), ['--version'], { stdio: 'ignore' }).error === undefined;
}

const skip = isInstalled('dpkg-deb') ? false : "dpkg-deb is missing (Debian's dpkg package): the agent's .deb cannot be built or read";

/** Runs a program; its status and both outputs, never throws. */
function runProgram(name: ProgramName, args: string[], opts: { cwd?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(program(name), args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new Error(`${name} ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const work = mkdtempSync(join(tmpdir(), 'fleetboot-agent-deb-'));
let deb = '';
let tree = '';
let usingStub = false;

before(() => {
  if (skip) return;
  let entry = REAL_ENTRY;
  if (!existsSync(entry)) {
    // Until the endpoint agent is in the tree: a stand-in that uses node's standard library as the agent does.
    usingStub = true;
    entry = join(work, 'stub', 'main.ts');
    mkdirSync(join(work, 'stub'));
    writeFileSync(
      entry,
      [
        '#!/usr/bin/env node',
        "import { createHash } from 'node:crypto';",
        "import { hostname } from 'node:os';",
        'const [cmd] = process.argv.slice(2);',
        "if (cmd === 'help') process.stdout.write(`usage: fleetboot-agent <command> (stub on node ${process.version}, ${createHash('sha256').update(hostname()).digest('hex').length} hex digits)\\n`);",
        "else { process.stderr.write(`fleetboot-agent: unknown command ${cmd}\\n`); process.exit(2); }",
        '',
      ].join('\n'),
    );
  }
  const out = join(work, 'out');
  const built = runProgram('bash', [join(ROOT, 'scripts/build-agent-deb.sh'), '--entry', entry, '--out', out, '--xz-level', '1']);
  assert.equal(built.status, 0, `build-agent-deb.sh failed:\n${built.stderr}`);
  deb = built.stdout.trim().split('\n').pop() ?? '';
  assert.ok(existsSync(deb), `build-agent-deb.sh printed '${deb}', which is not a file`);
  tree = join(work, 'tree');
  execFileSync(program('dpkg-deb'), ['-x', deb, tree]);
});

after(() => rmSync(work, { recursive: true, force: true }));

/** `Key: value` lines of a control file (continuation lines joined with \n). */
function controlFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let key = '';
  for (const line of text.split('\n')) {
    if (/^\s/.test(line) && key) fields.set(key, `${fields.get(key) ?? ''}\n${line.trim()}`);
    else {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m?.[1]) fields.set((key = m[1]), m[2] ?? '');
    }
  }
  return fields;
}

test('the .deb is named fleetboot-agent_<version>_<arch>.deb and dpkg-deb reads its control fields', { skip }, () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const arch = runProgram('dpkg', ['--print-architecture']).stdout.trim();
  assert.ok(deb.endsWith(`/${PKG}_${version}_${arch}.deb`), deb);

  const info = runProgram('dpkg-deb', ['--info', deb]);
  assert.equal(info.status, 0, info.stderr);
  for (const member of ['control', 'md5sums', 'postinst', 'prerm', 'postrm']) assert.match(info.stdout, new RegExp(`^\\s+\\d+ bytes,\\s+\\d+ lines\\s+\\*?\\s+${member}\\b`, 'm'), `no ${member} in:\n${info.stdout}`);
  assert.doesNotMatch(info.stdout, /\bconffiles\b/, 'nothing is shipped in /etc, so no conffiles');

  const f = controlFields(runProgram('dpkg-deb', ['--field', deb]).stdout);
  assert.equal(f.get('Package'), PKG);
  assert.equal(f.get('Version'), version);
  assert.equal(f.get('Architecture'), arch);
  assert.equal(f.get('Section'), 'admin');
  assert.equal(f.get('Priority'), 'optional');
  assert.match(f.get('Maintainer') ?? '', /^[^<>]+ <[^@<>\s]+@[^@<>\s]+>$/);
  assert.match(f.get('Description') ?? '', /^Fleetboot endpoint agent .+\n\S/);

  // Depends: a versioned dependency on the package of each library the shipped node needs, and nothing else.
  const libPackage: Record<string, string> = { 'libc.so.6': 'libc6', 'libm.so.6': 'libc6', 'libdl.so.2': 'libc6', 'libpthread.so.0': 'libc6', 'libstdc++.so.6': 'libstdc++6', 'libgcc_s.so.1': 'libgcc-s1' };
  const ldd = runProgram('ldd', [join(tree, 'usr/lib', PKG, 'node')]).stdout;
  const needed = new Set<string>();
  for (const m of ldd.matchAll(/^\s*(\S+\.so\.\d+) =>/gm)) {
    const lib = m[1] ?? '';
    assert.ok(lib in libPackage, `node needs ${lib}, which is not one of the libraries every Debian 12 has:\n${ldd}`);
    needed.add(libPackage[lib] ?? '');
  }
  const depends = (f.get('Depends') ?? '').split(',').map((d) => d.trim());
  assert.deepEqual(depends.map((d) => d.split(' ')[0]).sort(), [...needed].sort(), `Depends: ${f.get('Depends')}`);
  for (const d of depends) assert.match(d, /^[a-z0-9+.-]+ \(>= [0-9][0-9A-Za-z.:~+-]*\)$/, `unversioned or odd dependency: ${d}`);

  // Installed-Size: KiB of the files (du's blocks: a little more than their bytes).
  const installed = Number(f.get('Installed-Size'));
  const bytes = readdirSync(tree, { recursive: true, encoding: 'utf8' }).reduce((sum, p) => {
    const st = lstatSync(join(tree, p));
    return st.isFile() ? sum + st.size : sum;
  }, 0);
  assert.ok(installed >= bytes / 1024 && installed < bytes / 1024 + 1024, `Installed-Size ${installed} KiB for ${bytes} bytes`);
});

test('dpkg-deb --contents lists the expected paths, root:root, 0755 directories and programs, 0644 the rest', { skip }, () => {
  const r = runProgram('dpkg-deb', ['--contents', deb]);
  assert.equal(r.status, 0, r.stderr);
  const entries = r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [mode = '', owner = '', , , , path = ''] = line.split(/\s+/);
      return { mode, owner, path: path.replace(/^\.\//, '/').replace(/(.)\/$/, '$1') };
    });
  for (const e of entries) assert.equal(e.owner, 'root/root', `${e.path} is owned by ${e.owner}`);
  const modes = Object.fromEntries(entries.map((e) => [e.path, e.mode]));
  const dir = 'drwxr-xr-x';
  const exe = '-rwxr-xr-x';
  const file = '-rw-r--r--';
  assert.deepEqual(modes, {
    '/': dir,
    '/lib': dir,
    '/lib/systemd': dir,
    '/lib/systemd/system': dir,
    [`/${UNIT}`]: file,
    '/usr': dir,
    '/usr/bin': dir,
    [`/usr/bin/${PKG}`]: exe,
    '/usr/lib': dir,
    [`/usr/lib/${PKG}`]: dir,
    [`/usr/lib/${PKG}/agent.mjs`]: file,
    [`/usr/lib/${PKG}/node`]: exe,
    '/usr/share': dir,
    '/usr/share/doc': dir,
    [`/usr/share/doc/${PKG}`]: dir,
    [`/usr/share/doc/${PKG}/LICENSE.node.gz`]: file,
    [`/usr/share/doc/${PKG}/changelog.gz`]: file,
    [`/usr/share/doc/${PKG}/copyright`]: file,
    '/usr/share/lintian': dir,
    '/usr/share/lintian/overrides': dir,
    [`/usr/share/lintian/overrides/${PKG}`]: file,
  });

  const control = join(work, 'control');
  execFileSync(program('dpkg-deb'), ['--control', deb, control]);
  const sums = readFileSync(join(control, 'md5sums'), 'utf8').trim().split('\n');
  assert.deepEqual(sums.map((l) => l.slice(34)).sort(), entries.filter((e) => e.mode.startsWith('-')).map((e) => e.path.slice(1)).sort());
  for (const line of sums) {
    const [sum, path = ''] = [line.slice(0, 32), line.slice(34)];
    assert.equal(createHash('md5').update(readFileSync(join(tree, path))).digest('hex'), sum, `md5sums: ${path}`);
  }
});

test('the maintainer scripts: enable and start on configure (restart on upgrade), stop on remove, purge deletes the state', { skip }, () => {
  const control = join(work, 'scripts');
  execFileSync(program('dpkg-deb'), ['--control', deb, control]);
  const script = (name: string): string => {
    const path = join(control, name);
    assert.equal(statSync(path).mode & 0o777, 0o755, `${name} is not 0755`);
    const r = runProgram('sh', ['-n', path]);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^#!\/bin\/sh\nset -e\n/, `${name} starts with #!/bin/sh and set -e`);
    return text;
  };
  const postinst = script('postinst');
  assert.match(postinst, /deb-systemd-helper enable 'fleetboot-agent\.service'/);
  assert.match(postinst, /if \[ -d \/run\/systemd\/system \]; then[\s\S]*_dh_action=restart[\s\S]*_dh_action=start[\s\S]*deb-systemd-invoke \$_dh_action 'fleetboot-agent\.service'/);
  assert.match(script('prerm'), /\[ "\$1" = remove \] && \[ -d \/run\/systemd\/system \] ; then\n\tdeb-systemd-invoke stop 'fleetboot-agent\.service'/);
  const postrm = script('postrm');
  assert.match(postrm, /if \[ "\$1" = "purge" \]; then[\s\S]*deb-systemd-helper purge 'fleetboot-agent\.service'[\s\S]*rm -rf \/var\/lib\/fleetboot-agent\n/);
});

test('the wrapper runs the bundled agent on the package\'s own node', { skip }, () => {
  const wrapper = readFileSync(join(tree, 'usr/bin', PKG), 'utf8');
  const exec = `exec /usr/lib/${PKG}/node /usr/lib/${PKG}/agent.mjs "$@"`;
  assert.match(wrapper, /^#!\/bin\/sh\n/);
  assert.equal(wrapper.trim().split('\n').pop(), exec);
  assert.doesNotMatch(readFileSync(join(tree, 'usr/lib', PKG, 'agent.mjs'), 'utf8'), /^#!/, 'the bundle is no script of its own');

  // The wrapper as it is, with its two paths moved into the unpacked package.
  const moved = join(work, 'wrapper');
  writeFileSync(moved, wrapper.replaceAll(`/usr/lib/${PKG}/`, `${join(tree, 'usr/lib', PKG)}/`));
  chmodSync(moved, 0o755);
  const r = runProgram('sh', [moved, 'help']);
  assert.equal(r.status, 0, `${PKG} help: ${r.stderr}`);
  assert.match(r.stdout, /fleetboot-agent/);
  if (usingStub) assert.match(r.stdout, /stub on node v2\d\./);
  const direct = runProgram('node', [join(tree, 'usr/lib', PKG, 'agent.mjs'), 'help']);
  assert.equal(direct.stdout, r.stdout, "the same agent under the build host's node");
});

/**
 * `systemd-analyze verify --root=DIR UNIT`, DIR holding this machine's unit
 * files with the package unpacked over them and `unit` (text) as the
 * package's unit: passes only with status 0 and nothing said (systemd warns
 * about an unknown key and goes on with status 0).
 */
function verifyUnit(unit: string): { ok: boolean; output: string } {
  const root = join(work, 'verify');
  if (!existsSync(root)) {
    mkdirSync(join(root, 'lib/systemd/system'), { recursive: true });
    cpSync('/lib/systemd/system', join(root, 'lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    execFileSync(program('dpkg-deb'), ['-x', deb, root]);
  }
  writeFileSync(join(root, UNIT), unit);
  const r = runProgram('systemd-analyze', ['verify', `--root=${root}`, `${PKG}.service`], { cwd: work });
  const output = (r.stdout + r.stderr).trim();
  return { ok: r.status === 0 && output === '', output: `status ${r.status}: ${output}` };
}

test('the unit: the settings asked for, and systemd-analyze verify passes on it (and fails on a broken one)', { skip }, () => {
  assert.ok(isInstalled('systemd-analyze'), 'systemd-analyze is missing: bash scripts/install-deps.sh --with-test installs systemd');
  const unit = readFileSync(join(tree, UNIT), 'utf8');
  const settings = unit.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));
  for (const s of [
    'Wants=network-online.target',
    'After=network-online.target',
    `ExecStart=/usr/bin/${PKG} run --state-dir /var/lib/${PKG}`,
    'Restart=on-failure',
    'RestartSec=5',
    `StateDirectory=${PKG}`,
    'StateDirectoryMode=0700',
    'User=root',
    'WantedBy=multi-user.target',
  ]) {
    assert.ok(settings.includes(s), `the unit lacks ${s}:\n${unit}`);
  }
  assert.ok(!settings.some((s) => s.startsWith('NoNewPrivileges=yes') || s.startsWith('ProtectSystem=') || s.startsWith('PrivateTmp=yes')), 'a setting that breaks installers');

  const good = verifyUnit(unit);
  assert.ok(good.ok, good.output);
  const typo = verifyUnit(unit.replace('\nRestart=on-failure', '\nRestrat=on-failure'));
  assert.ok(!typo.ok, 'a misspelt key passed');
  assert.match(typo.output, /Unknown key 'Restrat'/);
  const missing = verifyUnit(unit.replace(`ExecStart=/usr/bin/${PKG} `, `ExecStart=/usr/bin/${PKG}-missing `));
  assert.ok(!missing.ok, 'a missing ExecStart program passed');
  assert.match(missing.output, /is not executable/);
});

test('lintian finds nothing the package does not explain in its overrides', { skip }, () => {
  assert.ok(isInstalled('lintian'), 'lintian is missing: bash scripts/install-deps.sh --with-test installs it');
  // unused-override: which tags fire depends on the node build shipped (NodeSource's, nodejs.org's).
  const r = runProgram('lintian', ['--info', '--display-info', '--pedantic', '--fail-on', 'error,warning,info,pedantic', '--suppress-tags', 'unused-override', deb]);
  assert.equal(r.status, 0, `lintian:\n${r.stdout}`);
  assert.equal(r.stdout.trim(), '', `lintian:\n${r.stdout}`);
});
