import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootEnvScript, chainScript, entryBootLines, entryProblem, entryScript, ipxeArgsProblem, ipxeText, ipxeUrlProblem, menuScript, messageScript, nodeRedirectScript } from './ipxe.js';

const base = 'http://10.0.0.1:8080';
const entry = { name: 'debian', kernel: 'vmlinuz', initrds: ['initrd.gz'], cmdline: 'console=ttyS0 quiet' };

/**
 * The words iPXE would see on each line (whitespace split, no quoting), the
 * way ipxe/src/core/exec.c splits them: used to prove no injected command.
 */
function commands(script: string): string[][] {
  const out: string[][] = [];
  for (const line of script.split('\n')) {
    const words = line.trim().split(/\s+/).filter(Boolean);
    let cur: string[] = [];
    for (const w of words) {
      if (w.startsWith('#')) break;
      if (w === '||' || w === '&&' || w === ';') {
        out.push(cur);
        cur = [];
      } else cur.push(w);
    }
    out.push(cur);
  }
  return out.filter((c) => c.length > 0);
}

test('chainScript() starts with #!ipxe, retries dhcp and chains to the decision with encoded settings', () => {
  const s = chainScript(base);
  assert.ok(s.startsWith('#!ipxe\n'));
  assert.match(s, /^dhcp && goto fb_chain \|\|$/m);
  assert.match(s, /^isset \$\{ip\} && goto fb_chain \|\|$/m);
  assert.match(s, /iseq \$\{fb-try\} 4 && goto fb_nonet/);
  const chain = s.split('\n').find((l) => l.startsWith('chain '));
  assert.ok(chain);
  assert.ok(chain.startsWith(`chain --replace --autofree ${base}/boot/decide?mac=\${net0/mac:hexhyp}&uuid=\${uuid}&platform=\${platform:uristring}`));
  assert.match(chain, /serial=\$\{serial:uristring\}/);
  assert.match(chain, /\|\| goto fb_fail$/);
});

test('chainScript() refuses a base URL that could inject commands', () => {
  assert.throws(() => chainScript('http://x/${foo}'), RangeError);
  assert.throws(() => chainScript('http://x/a b'), RangeError);
  assert.throws(() => chainScript('http://x/\nshell'), RangeError);
});

test('entryScript() loads kernel, named initrds and boots, with initrd= for EFI', () => {
  const s = entryScript({ baseUrl: base, mac: '52:54:00:12:34:56', hostName: 'web1', entry, platform: 'efi' });
  assert.ok(s.startsWith('#!ipxe\n'));
  assert.ok(s.includes(`kernel ${base}/boot/entries/debian/vmlinuz initrd=initrd.gz console=ttyS0 quiet || goto failed\n`));
  assert.ok(s.includes(`initrd --name initrd.gz ${base}/boot/entries/debian/initrd.gz || goto failed\n`));
  assert.ok(s.includes('boot || goto failed\n'));
  assert.ok(s.includes('sanboot --no-describe --drive 0x80'));
});

test('entryBootLines() leaves initrd= out on BIOS and names duplicate initrds apart', () => {
  const e = { name: 'x', kernel: 'https://cdn.example/k', initrds: ['https://a.example/1/initrd.img', 'https://a.example/2/initrd.img'], cmdline: '' };
  const bios = entryBootLines(base, e, 'pcbios', 'f');
  assert.equal(bios[0], 'kernel https://cdn.example/k || goto f');
  const efi = entryBootLines(base, e, 'efi', 'f');
  assert.equal(efi[0], 'kernel https://cdn.example/k initrd=initrd.img initrd=initrd1 || goto f');
  assert.equal(efi[1], 'initrd --name initrd.img https://a.example/1/initrd.img || goto f');
  assert.equal(efi[2], 'initrd --name initrd1 https://a.example/2/initrd.img || goto f');
});

test('ipxeArgsProblem() refuses every way of injecting a command into a command line', () => {
  const attacks = [
    'quiet\nshell',
    'quiet\r\nshell',
    'quiet ${net0/mac}',
    'a=${x:hex}',
    'quiet || shell',
    'quiet && shell',
    'quiet ; shell',
    'quiet #comment',
    'quiet\\',
    'tab\there',
    'nul\u0000',
    'unicode\u2028line',
    'x'.repeat(5000),
  ];
  for (const a of attacks) assert.notEqual(ipxeArgsProblem(a), null, JSON.stringify(a));
  for (const ok of ['', 'console=ttyS0,115200n8 quiet', 'root=/dev/sda1 ro a=b|c x&y $HOME {}', 'foo="a b" c#d']) {
    assert.equal(ipxeArgsProblem(ok), null, ok);
  }
});

test('ipxeUrlProblem() accepts http(s) URLs and refuses anything else', () => {
  assert.equal(ipxeUrlProblem('https://deb.example/dists/x/linux?a=1&b=2#frag'), null);
  for (const bad of ['ftp://x/y', 'http://x/${ip}', 'http://x/a b', 'http://x/a\nshell', 'http://x/"q"', 'http://x/a\\', 'http://', 'javascript:alert(1)', '/local/path']) {
    assert.notEqual(ipxeUrlProblem(bad), null, bad);
  }
});

test('entryProblem() refuses unsafe names, sources and command lines; entryScript() throws on them', () => {
  const bad = [
    { ...entry, name: 'a b' },
    { ...entry, name: 'x\nshell' },
    { ...entry, kernel: '../etc/passwd' },
    { ...entry, kernel: 'http://x/${y}' },
    { ...entry, initrds: ['ok.img', 'bad name'] },
    { ...entry, cmdline: 'quiet\nchain http://evil/' },
    { ...entry, cmdline: 'quiet || shell' },
  ];
  for (const e of bad) {
    assert.notEqual(entryProblem(e), null, JSON.stringify(e));
    assert.throws(() => entryScript({ baseUrl: base, mac: '52:54:00:12:34:56', hostName: null, entry: e, platform: null }), RangeError);
  }
});

test('entryScript() with a hostile-looking but allowed command line yields exactly one kernel command', () => {
  const e = { ...entry, cmdline: 'a|b x&&y ;z end#not-a-comment $dollar {brace}' };
  const cmds = commands(entryScript({ baseUrl: base, mac: '52:54:00:12:34:56', hostName: null, entry: e, platform: 'pcbios' }));
  const kernel = cmds.filter((c) => c[0] === 'kernel');
  assert.equal(kernel.length, 1);
  assert.deepEqual(kernel[0], ['kernel', `${base}/boot/entries/debian/vmlinuz`, 'a|b', 'x&&y', ';z', 'end#not-a-comment', '$dollar', '{brace}']);
  const verbs = new Set(cmds.map((c) => c[0]).filter((v) => v !== undefined && !v.startsWith(':')));
  const allowed = new Set(['echo', 'kernel', 'initrd', 'boot', 'goto', 'sleep', 'iseq', 'sanboot', 'exit']);
  for (const v of verbs) assert.ok(allowed.has(v as string), `unexpected command ${v}`);
  assert.ok(!verbs.has('shell') && !verbs.has('chain'));
});

test('menuScript() defaults to the local disk after the configured timeout', () => {
  const s = menuScript({ baseUrl: base, mac: '52:54:00:12:34:56', title: '52:54:00:12:34:56, unknown machine', entries: [entry], timeoutSeconds: 10, platform: null });
  assert.ok(s.startsWith('#!ipxe\n'));
  assert.match(s, /^menu Fleetboot: 52:54:00:12:34:56, unknown machine$/m);
  assert.match(s, /^item local Boot from local disk$/m);
  assert.match(s, /^item entry0 debian$/m);
  assert.match(s, /^choose --timeout 10000 --default local target \|\| goto local$/m);
  assert.match(s, /^goto \$\{target\}$/m);
  assert.match(s, /^:local\necho Fleetboot: booting from the local disk\niseq \$\{platform\} pcbios && sanboot --no-describe --drive 0x80 \|\|\nexit$/m);
});

test('menuScript() leaves out entries that would not render safely', () => {
  const s = menuScript({
    baseUrl: base,
    mac: '52:54:00:12:34:56',
    title: 't',
    entries: [entry, { ...entry, name: 'evil', cmdline: 'x\nshell' }],
    timeoutSeconds: 3,
    platform: 'efi',
  });
  assert.ok(!s.includes('evil'));
  assert.match(s, /choose --timeout 3000 /);
});

test('menuScript() with a zero timeout boots the local disk without a menu', () => {
  const s = menuScript({ baseUrl: base, mac: 'm', title: 't', entries: [entry], timeoutSeconds: 0, platform: null });
  assert.ok(!s.includes('choose'));
  assert.match(s, /sanboot --no-describe --drive 0x80/);
});

test('ipxeText() and messageScript() neutralise newlines, expansions and comment/option words', () => {
  assert.equal(ipxeText('a\nb ${x} #c -d'), 'a_b __x_ _c _d');
  const s = messageScript('bad mac "x\nshell"');
  assert.equal(s.split('\n').length, 5);
  assert.ok(!s.includes('\nshell'));
});

test('bootEnvScript() refuses unsafe values instead of rendering them', () => {
  const ok = { baseUrl: 'http://10.0.0.1:8080', mac: '52:54:00:12:34:56', hostName: null, taskId: 3, taskType: 'capture', token: 'cd'.repeat(32), kernelArgs: '' };
  const s = bootEnvScript(ok);
  assert.ok(s.startsWith('#!ipxe\n'));
  assert.match(s, /fleetboot\.task=3 fleetboot\.token=(cd){32} BOOTIF=/);
  assert.throws(() => bootEnvScript({ ...ok, token: 'x y' }), RangeError);
  assert.throws(() => bootEnvScript({ ...ok, taskId: 0 }), RangeError);
  assert.throws(() => bootEnvScript({ ...ok, kernelArgs: 'a\nshell' }), RangeError);
  assert.throws(() => bootEnvScript({ ...ok, kernelArgs: '${x}' }), RangeError);
});

test('nearest node: chainScript() marks the decision request via=NODE; nodeRedirectScript() chains to the node\'s /boot.ipxe?via=NODE; both refuse unsafe values', () => {
  const c = chainScript('http://10.0.9.2:8080', { via: 'node-a' });
  assert.match(c, /^chain --replace --autofree http:\/\/10\.0\.9\.2:8080\/boot\/decide\?via=node-a&mac=\$\{net0\/mac:hexhyp\}&/m);
  assert.doesNotMatch(chainScript('http://10.0.9.2:8080'), /via=/);
  assert.throws(() => chainScript('http://10.0.9.2:8080', { via: 'a b' }), RangeError);
  const r = nodeRedirectScript({ node: 'node-b', baseUrl: 'http://10.0.9.2:8080', via: 'node-a' });
  assert.match(r, /^#!ipxe\n/);
  assert.match(r, /^chain --replace --autofree http:\/\/10\.0\.9\.2:8080\/boot\.ipxe\?via=node-a \|\| goto fb_fail$/m);
  assert.throws(() => nodeRedirectScript({ node: 'node-b', baseUrl: 'http://10.0.9.2:8080/${evil}', via: 'node-a' }), RangeError);
  assert.throws(() => nodeRedirectScript({ node: 'node-b', baseUrl: 'tftp://10.0.9.2', via: 'node-a' }), RangeError);
  assert.throws(() => nodeRedirectScript({ node: 'node b', baseUrl: 'http://10.0.9.2:8080', via: 'node-a' }), RangeError);
});
