import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIOS_MENU_PROMPT_MAX, defaultConfig, loadConfig, validateConfig, type ConfigOverrides } from './config.js';
import { expects, type Rule } from './fields.js';
import { CONFIG_SCHEMA, schemaFields } from './schema.js';
import { FleetbootError } from '../lib/errors.js';
import { createPacket, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { getOption, setOption } from '../protocol/dhcp/options.js';
import { decodePxeOptions } from '../protocol/dhcp/pxe.js';
import { decideProxyAnswer, type ProxyContext } from '../boot/proxy-answer.js';

/** `{ a: { b: value } }` for the key "a.b". */
function at(key: string, value: unknown): ConfigOverrides {
  return key.split('.').reduceRight<unknown>((inner, k) => ({ [k]: inner }), value) as ConfigOverrides;
}

/** A FleetbootError('CONFIG') whose message matches. */
function configError(re: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof FleetbootError, `expected a FleetbootError, got ${String(e)}`);
    assert.equal(e.code, 'CONFIG');
    assert.match(e.message, re);
    return true;
  };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('loadConfig() gives the embedded defaults, frozen', () => {
  const c = loadConfig({ cwd: '/srv/x' });
  assert.equal(c.dataDir, '/srv/x/data');
  assert.equal(c.tftp.root, '/srv/x/data/tftp');
  assert.equal(c.dhcp.mode, 'proxy');
  assert.equal(c.dhcp.port, 67);
  assert.equal(c.dhcp.pxePort, 4011);
  assert.equal(c.tftp.port, 69);
  assert.equal(c.http.port, 8080);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.tftp));
});

test('loadConfig() layers the file, then overrides; the TFTP root follows the data dir unless set', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fbcfg-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ dataDir: 'd1', http: { port: 9000 }, tftp: { dataPorts: { from: 64001, to: 65000 } } }));
  const c = loadConfig({ file, cwd: dir, overrides: { http: { port: 9001 } } });
  assert.equal(c.http.port, 9001);
  assert.equal(c.dataDir, join(dir, 'd1'));
  assert.equal(c.tftp.root, join(dir, 'd1', 'tftp'));
  assert.deepEqual(c.tftp.dataPorts, { from: 64001, to: 65000 });
  const c2 = loadConfig({ cwd: dir, overrides: { tftp: { root: '/srv/tftp' } } });
  assert.equal(c2.tftp.root, '/srv/tftp');
  assert.equal(loadConfig({ cwd: dir, overrides: { tftp: { root: 'rel' } } }).tftp.root, join(dir, 'rel'));
});

test('loadConfig() names the bad key and the value seen', () => {
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { http: { port: 70000 } } }), configError(/^'http\.port' must be a port number 0-65535: current value is 70000$/));
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { serverIp: '10.0.0.300' } }), configError(/^'serverIp' must be an IPv4 address or null: current value is "10\.0\.0\.300"$/));
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { tftp: { dataPorts: { from: 65000, to: 64001 } } } }), configError(/'tftp\.dataPorts' must have from <= to/));
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { http: { publicUrl: 'http://x/${net0/mac}' } } }), configError(/^'http\.publicUrl' contains characters/));
  const dir = mkdtempSync(join(tmpdir(), 'fbcfg-'));
  writeFileSync(join(dir, 'bad.json'), '{"htp": {}}');
  assert.throws(() => loadConfig({ file: join(dir, 'bad.json'), cwd: dir }), configError(/Unknown configuration key 'htp'/));
  writeFileSync(join(dir, 'bad2.json'), '{"dhcp": {"biosMenu": {"promt": "F8"}}}');
  assert.throws(() => loadConfig({ file: join(dir, 'bad2.json'), cwd: dir }), configError(/Unknown configuration key 'dhcp\.biosMenu\.promt': current value is "F8"/));
  writeFileSync(join(dir, 'bad3.json'), '{"dhcp": {"biosMenu": true}}');
  assert.throws(() => loadConfig({ file: join(dir, 'bad3.json'), cwd: dir }), configError(/^'dhcp\.biosMenu' must be an object: current value is true$/));
  writeFileSync(join(dir, 'junk.json'), '{not json');
  assert.throws(() => loadConfig({ file: join(dir, 'junk.json'), cwd: dir }), /not valid JSON/);
});

test('loadConfig() refuses an over-long BIOS menu prompt at start, naming dhcp.biosMenu.prompt', () => {
  const prompt = 'Press F8 '.repeat(30);
  assert.throws(
    () => loadConfig({ cwd: '/tmp', overrides: { dhcp: { biosMenu: { enabled: true, prompt } } } }),
    configError(new RegExp(`^'dhcp\\.biosMenu\\.prompt' must be at most ${BIOS_MENU_PROMPT_MAX} characters: current value is ${escape(JSON.stringify(prompt))}$`)),
  );
  // Refused when the menu is off too: turning it on later must not break every BIOS DISCOVER.
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { dhcp: { biosMenu: { prompt } } } }), configError(/dhcp\.biosMenu\.prompt/));
  for (const bad of ['Appuyez sur F8 \u00e9', 'F8\nmenu', 'F8 \u2192 menu', 'F8\u0000']) {
    assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { dhcp: { biosMenu: { prompt: bad } } } }), configError(/^'dhcp\.biosMenu\.prompt' must be printable ASCII/));
  }
});

test('dhcp.biosMenu.prompt: the longest prompt config accepts is the longest the BIOS menu offer can carry', () => {
  const bios: DhcpPacket = createPacket({ xid: 0x1234, chaddr: Buffer.from('525400000001', 'hex') });
  setOption(bios, 53, Buffer.from([1]));
  setOption(bios, 60, Buffer.from('PXEClient:Arch:00000:UNDI:002001'));
  setOption(bios, 93, Buffer.from([0, 0]));
  const offer = (biosMenu: ProxyContext['biosMenu']) => {
    const ctx: ProxyContext = {
      serverIp: '255.255.255.254',
      httpBaseUrl: 'http://10.0.0.5:8080',
      bootFiles: defaultConfig('/tmp').boot.files,
      biosMenu,
    };
    return decideProxyAnswer(bios, { port: 'dhcp', address: '0.0.0.0', sourcePort: 68 }, ctx);
  };
  const longest = '~'.repeat(BIOS_MENU_PROMPT_MAX);
  const c = loadConfig({ cwd: '/tmp', overrides: { dhcp: { biosMenu: { enabled: true, prompt: longest, timeoutSeconds: 255 } } } });
  const r = offer(c.dhcp.biosMenu);
  assert.ok(!('ignore' in r));
  assert.deepEqual(decodePxeOptions(getOption(r.reply, 43) ?? Buffer.alloc(0)).menuPrompt, { timeout: 255, prompt: longest });
  // One more character: the encoder (src/protocol/dhcp/pxe.ts) refuses it, and so does config.
  assert.throws(() => offer({ enabled: true, prompt: `${longest}~`, timeoutSeconds: 255 }), RangeError);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { dhcp: { biosMenu: { prompt: `${longest}~` } } } }), configError(/dhcp\.biosMenu\.prompt/));
});

/** A value of the wrong type or out of range for a rule. */
function wrongValue(rule: Rule): unknown {
  switch (rule.type) {
    case 'integer':
      return String(rule.min);
    case 'boolean':
      return 'true';
    case 'enum':
      return 'nonesuch';
    case 'string':
      return 42;
    case 'ipv4':
      return '10.0.0.300';
    case 'port':
      return 70000;
    case 'path':
      return '';
    case 'custom':
      return 42;
  }
}

test('loadConfig() refuses a wrong value for every key, naming the key and the value', () => {
  const fields = schemaFields();
  assert.ok(fields.length >= 45);
  for (const [key, field] of fields) {
    const v = wrongValue(field.rule);
    assert.throws(() => loadConfig({ cwd: '/tmp', overrides: at(key, v) }), configError(new RegExp(`^'${escape(key)}' .*: current value is ${escape(JSON.stringify(v))}$`)), key);
  }
  // The keys the issue names, one by one, with the message in full.
  const cases: Array<[string, unknown, string]> = [
    ['dhcp.biosMenu.enabled', 'yes', `'dhcp.biosMenu.enabled' must be true or false: current value is "yes"`],
    ['tftp.enabled', 0, `'tftp.enabled' must be true or false: current value is 0`],
    ['dhcp.bindAddress', 'eth0', `'dhcp.bindAddress' must be an IPv4 address: current value is "eth0"`],
    ['tftp.bindAddress', '::', `'tftp.bindAddress' must be an IPv4 address: current value is "::"`],
    ['tftp.root', '', `'tftp.root' must be a path: current value is ""`],
    ['tftp.root', null, `'tftp.root' must be a path: current value is null`],
    ['interface', 'eth0 eth1', `'interface' must be a network interface name (1-15 characters, no spaces or "/"): current value is "eth0 eth1"`],
    ['interface', 'a-very-long-interface', `'interface' must be a network interface name (1-15 characters, no spaces or "/"): current value is "a-very-long-interface"`],
    ['log.level', 'verbose', `'log.level' must be one of 'fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent': current value is "verbose"`],
    ['dhcp.probeAtStart', 'auto', `'dhcp.probeAtStart' must be true, false or null: current value is "auto"`],
    ['boot.files.bios', '../etc/passwd', `'boot.files.bios' must be a relative path inside the TFTP root, printable ASCII without spaces: current value is "../etc/passwd"`],
    ['dhcp.pools', {}, `'dhcp.pools' must be a list of pools: current value is {}`],
    ['interface', 42, `'interface' must be a network interface name (1-15 characters, no spaces or "/") or null: current value is 42`],
  ];
  for (const [key, v, message] of cases) {
    assert.throws(() => loadConfig({ cwd: '/tmp', overrides: at(key, v) }), (e: unknown) => e instanceof FleetbootError && e.message === message, message);
  }
});

/** The dotted keys of a config object's values (plain objects are sections). */
function leafKeys(o: unknown, prefix = ''): string[] {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return [prefix.slice(0, -1)];
  return Object.entries(o).flatMap(([k, v]) => leafKeys(v, `${prefix}${k}.`));
}

test('the schema has one field per key of the default config, each with a default that passes it and a description', () => {
  const fields = schemaFields();
  const keys = fields.map(([k]) => k);
  assert.equal(new Set(keys).size, keys.length);
  // Every key of the default config has a field, and every field a key there (a default).
  assert.deepEqual(leafKeys(defaultConfig('/srv/x')).sort(), [...keys].sort());
  assert.deepEqual(leafKeys(loadConfig({ cwd: '/srv/x' })).sort(), [...keys].sort());
  for (const [key, field] of fields) {
    const d = field.defaultFor({ cwd: '/srv/x', dataDir: '/srv/x/data' });
    assert.notEqual(d, undefined, `${key} has a default`);
    assert.ok(field.nullable || d !== null, `${key}: a null default needs a nullable field`);
    assert.ok(/^[^\n]{10,200}$/.test(field.doc), `${key} has a one-line description`);
    assert.ok(expects(field.rule, field.nullable).length > 0);
  }
  // The defaults validate as a whole config too, and give the same config back.
  assert.deepEqual(validateConfig(defaultConfig('/srv/x'), '/'), defaultConfig('/srv/x'));
  assert.equal(CONFIG_SCHEMA.dhcp.biosMenu.prompt.defaultFor({ cwd: '/', dataDir: '/' }), 'Press F8 for the boot menu');
});

test('loadConfig() and validateConfig() leave their input alone and return a new, deep-frozen object', () => {
  const overrides: ConfigOverrides = {
    dhcp: {
      mode: 'server',
      pools: [{ start: '10.0.0.100', end: '10.0.0.200', dns: ['10.0.0.53'] } as never],
      options: [{ code: 6, value: '10.0.0.53' }],
      reservations: [{ mac: '52-54-00-AA-BB-01', ip: '10.0.0.20' } as never],
      biosMenu: { enabled: true },
    },
    tftp: { dataPorts: { from: 64001, to: 65000 }, root: 'tftp-here' },
    imaging: { createRateLimit: { burst: 5 } },
  };
  const before = structuredClone(overrides);
  const c = loadConfig({ cwd: '/srv/x', overrides });
  assert.deepEqual(overrides, before);
  assert.ok(!Object.isFrozen(overrides.dhcp?.pools?.[0]) && !Object.isFrozen(overrides.tftp?.dataPorts));
  assert.equal(c.dhcp.pools[0]?.netmask, '255.255.255.0');
  assert.equal(c.dhcp.reservations[0]?.mac, '52:54:00:aa:bb:01');
  assert.deepEqual(c.imaging.createRateLimit, { burst: 5, perMinute: 10 });
  assert.notEqual(c.tftp.dataPorts, overrides.tftp?.dataPorts);
  const frozen = [c, c.dhcp, c.dhcp.biosMenu, c.dhcp.pools, c.dhcp.pools[0], c.dhcp.pools[0]?.dns, c.dhcp.options[0], c.dhcp.reservations[0], c.tftp.dataPorts, c.boot.files, c.imaging.createRateLimit, c.log];
  frozen.forEach((o, i) => assert.ok(Object.isFrozen(o), `object ${i} is frozen`));

  const whole = defaultConfig('/srv/x');
  const wholeBefore = structuredClone(whole);
  const v = validateConfig(whole);
  assert.deepEqual(whole, wholeBefore);
  assert.ok(!Object.isFrozen(whole) && !Object.isFrozen(whole.dhcp.pools) && Object.isFrozen(v.dhcp.pools));
});

test('loadConfig() has imaging defaults and validates them', () => {
  const c = loadConfig({ cwd: '/srv/x' });
  assert.deepEqual(c.imaging, {
    bootEnvDir: '/srv/x/data/bootenv',
    maxTransfers: 10,
    agentTimeoutSeconds: 300,
    progressIntervalSeconds: 3,
    unknownPolicy: 'menu',
    kernelArgs: '',
    maxImageBytes: 2 ** 40,
    maxAttempts: 3,
    keepRevisions: 3,
    captureApproval: false,
    createRateLimit: { burst: 20, perMinute: 10 },
  });
  assert.equal(loadConfig({ cwd: '/srv/x', overrides: { dataDir: '/d' } }).imaging.bootEnvDir, '/d/bootenv');
  assert.equal(loadConfig({ cwd: '/srv/x', overrides: { imaging: { bootEnvDir: 'be' } } }).imaging.bootEnvDir, '/srv/x/be');
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { maxTransfers: 0 } } }), /imaging\.maxTransfers.*0/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { unknownPolicy: 'boot' as 'menu' } } }), /imaging\.unknownPolicy/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { unknownPolicy: 'pending' as 'menu' } } }), /imaging\.unknownPolicy/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { kernelArgs: 'quiet ${x}' } } }), /imaging\.kernelArgs/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { kernelArgs: 'a || b' } } }), /imaging\.kernelArgs/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { kernelArgs: 'fleetboot.token=abc' } } }), /imaging\.kernelArgs/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { agentTimeoutSeconds: 4, progressIntervalSeconds: 3 } } }), /progressIntervalSeconds/);
  assert.equal(loadConfig({ cwd: '/tmp', overrides: { imaging: { kernelArgs: 'quiet loglevel=3 fleetboot.onexit=poweroff' } } }).imaging.kernelArgs, 'quiet loglevel=3 fleetboot.onexit=poweroff');
});

test('loadConfig() bounds the new keys: imaging.keepRevisions, captureApproval, createRateLimit, log.format', () => {
  const ok = (o: ConfigOverrides) => loadConfig({ cwd: '/tmp', overrides: o });
  const bad = (o: ConfigOverrides, re: RegExp) => assert.throws(() => ok(o), configError(re));
  assert.equal(ok({}).log.format, 'auto');
  assert.equal(ok({ imaging: { keepRevisions: 1 } }).imaging.keepRevisions, 1);
  assert.equal(ok({ imaging: { keepRevisions: 1000 } }).imaging.keepRevisions, 1000);
  bad({ imaging: { keepRevisions: 0 } }, /^'imaging\.keepRevisions' must be an integer 1-1000: current value is 0$/);
  bad({ imaging: { keepRevisions: 1001 } }, /^'imaging\.keepRevisions' must be an integer 1-1000: current value is 1001$/);
  bad({ imaging: { keepRevisions: 2.5 } }, /imaging\.keepRevisions/);
  assert.equal(ok({ imaging: { captureApproval: true } }).imaging.captureApproval, true);
  bad({ imaging: { captureApproval: 'true' as never } }, /^'imaging\.captureApproval' must be true or false: current value is "true"$/);
  assert.deepEqual(ok({ imaging: { createRateLimit: { burst: 1, perMinute: 100_000 } } }).imaging.createRateLimit, { burst: 1, perMinute: 100_000 });
  bad({ imaging: { createRateLimit: { burst: 0 } } }, /^'imaging\.createRateLimit\.burst' must be an integer 1-100000: current value is 0$/);
  bad({ imaging: { createRateLimit: { perMinute: 100_001 } } }, /^'imaging\.createRateLimit\.perMinute' must be an integer 1-100000: current value is 100001$/);
  bad({ imaging: { createRateLimit: 20 as never } }, /^'imaging\.createRateLimit' must be an object: current value is 20$/);
  for (const format of ['auto', 'pretty', 'json'] as const) assert.equal(ok({ log: { format } }).log.format, format);
  bad({ log: { format: 'text' as never } }, /^'log\.format' must be one of 'auto', 'pretty', 'json': current value is "text"$/);
});

test('loadConfig() has Wake-on-LAN defaults (port 9, three sends over 30 s) and validates them', () => {
  const ok = (o: ConfigOverrides) => loadConfig({ cwd: '/tmp', overrides: o });
  const bad = (o: ConfigOverrides, re: RegExp) => assert.throws(() => ok(o), configError(re));
  assert.deepEqual(ok({}).wake, { port: 9, repeats: 3, spacingSeconds: 15, contactTimeoutSeconds: 300, subnets: [], relayPrefixLength: 24 });
  assert.deepEqual(ok({ wake: { subnets: ['10.1.2.7/23', '192.168.5.0/24'] } }).wake.subnets, ['10.1.2.0/23', '192.168.5.0/24']);
  bad({ wake: { subnets: ['10.1.2.0'] } }, /^'wake\.subnets\[0\]' must be a subnet such as "10\.1\.2\.0\/24" with a prefix of 1-30 .*: current value is "10\.1\.2\.0"$/);
  bad({ wake: { subnets: ['10.1.2.0/31'] } }, /'wake\.subnets\[0\]'/);
  bad({ wake: { subnets: '10.1.2.0/24' as never } }, /^'wake\.subnets' must be a list of subnets/);
  bad({ wake: { port: 0 } }, /^'wake\.port' must be a port number 1-65535: current value is 0$/);
  bad({ wake: { repeats: 0 } }, /'wake\.repeats' must be an integer 1-10/);
  bad({ wake: { contactTimeoutSeconds: 30, spacingSeconds: 15 } }, /^'wake\.contactTimeoutSeconds' must be longer than a wake round \('wake\.repeats' 3 x 'wake\.spacingSeconds' 15: 30 s\): current value is 30$/);
  bad({ wake: { relayPrefixLength: 31 } }, /'wake\.relayPrefixLength' must be an integer 8-30/);
});

test('loadConfig() has session timeouts (30 idle minutes, 12 hours at most) and refuses an idle timeout beyond the absolute one', () => {
  const ok = (o: ConfigOverrides) => loadConfig({ cwd: '/tmp', overrides: o });
  const bad = (o: ConfigOverrides, re: RegExp) => assert.throws(() => ok(o), configError(re));
  assert.deepEqual(ok({}).auth, { sessionIdleMinutes: 30, sessionMaxHours: 12 });
  assert.deepEqual(ok({ auth: { sessionIdleMinutes: 60, sessionMaxHours: 1 } }).auth, { sessionIdleMinutes: 60, sessionMaxHours: 1 });
  bad({ auth: { sessionIdleMinutes: 0 } }, /^'auth\.sessionIdleMinutes' must be an integer 1-10080: current value is 0$/);
  bad({ auth: { sessionMaxHours: 0 } }, /^'auth\.sessionMaxHours' must be an integer 1-2160: current value is 0$/);
  bad({ auth: { sessionIdleMinutes: 61, sessionMaxHours: 1 } }, /^'auth\.sessionIdleMinutes' must be at most 'auth\.sessionMaxHours' \(1 h = 60 min\): a session never outlives its absolute timeout: current value is 61$/);
});

test('loadConfig() has HTTPS on 8443 from our own CA by default, and refuses half an admin certificate or a shared port', () => {
  const ok = (o: ConfigOverrides) => loadConfig({ cwd: '/srv', overrides: o });
  const bad = (o: ConfigOverrides, re: RegExp) => assert.throws(() => ok(o), configError(re));
  assert.deepEqual(ok({}).https, { enabled: true, host: '0.0.0.0', port: 8443, certFile: null, keyFile: null, caFile: null, names: [] });
  const own = ok({ https: { certFile: 'site.crt', keyFile: '/etc/ssl/site.key', caFile: 'ca.crt', names: ['PXE.example.org', '10.1.2.3'] } }).https;
  assert.deepEqual([own.certFile, own.keyFile, own.caFile, own.names], ['/srv/site.crt', '/etc/ssl/site.key', '/srv/ca.crt', ['pxe.example.org', '10.1.2.3']]);
  bad({ https: { certFile: 'site.crt' } }, /^'https\.keyFile' must be set with 'https\.certFile' \(a certificate and its key go together\): current value is null$/);
  bad({ https: { keyFile: 'site.key' } }, /^'https\.certFile' must be set with 'https\.keyFile'/);
  bad({ https: { caFile: 'ca.crt' } }, /^'https\.caFile' is the CA of 'https\.certFile', which is not set: current value is "\/srv\/ca\.crt"$/);
  bad({ https: { names: ['ok.example', 'bad_name'] } }, /^'https\.names\[1\]' must be a DNS name \(letters, digits, hyphens, dots\) or an IPv4 address: current value is "bad_name"$/);
  bad({ https: { port: 8080 } }, /^'https\.port' must differ from 'http\.port' \(8080\): HTTP and HTTPS each need a port of their own: current value is 8080$/);
  assert.equal(ok({ https: { port: 8080, enabled: false } }).https.port, 8080);
  assert.equal(ok({ http: { port: 0 }, https: { port: 0 } }).https.port, 0);
  bad({ https: { host: 'eth0' } }, /^'https\.host' must be an IPv4 address, '::' or 'localhost'/);
});

test('loadConfig() has node.groups (none by default): group names with node names\' syntax, none twice', () => {
  const ok = (o: ConfigOverrides) => loadConfig({ cwd: '/srv', overrides: o });
  const bad = (o: ConfigOverrides, re: RegExp) => assert.throws(() => ok(o), configError(re));
  assert.deepEqual(ok({}).node.groups, []);
  assert.deepEqual(ok({ node: { groups: ['building-a', 'lab.2'] } }).node.groups, ['building-a', 'lab.2']);
  bad({ node: { groups: 'building-a' as never } }, /^'node\.groups' must be a list of group names: current value is "building-a"$/);
  bad({ node: { groups: ['ok', 'bad name'] } }, /^'node\.groups\[1\]' must be a group name \(1-64 letters, digits, '\.', '_' or '-', starting with a letter or digit\): current value is "bad name"$/);
  bad({ node: { groups: [7 as never] } }, /^'node\.groups\[0\]' must be a group name .*: current value is 7$/);
  bad({ node: { groups: ['group:lab'] } }, /^'node\.groups\[0\]' must be a group name \(.*\) \(without 'group:': that prefix marks a group in an image's --nodes, not here\): current value is "group:lab"$/);
  bad({ node: { groups: ['lab', 'x', 'lab'] } }, /^'node\.groups\[2\]' names group 'lab' a second time \(first at node\.groups\[0\]\): current value is "lab"$/);
});
