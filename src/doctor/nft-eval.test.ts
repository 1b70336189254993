import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateInput, inputChainCount, NftRulesetError, ruleText, type NftPacket } from './nft-eval.js';

// Expressions as `nft -j list ruleset` prints them (nft 1.0.6).
const match = (left: unknown, right: unknown, op = '=='): unknown => ({ match: { op, left, right } });
const dport = (protocol: 'udp' | 'tcp' | 'th'): unknown => ({ payload: { protocol, field: 'dport' } });
const meta = (key: string): unknown => ({ meta: { key } });
const ctState = { ct: { key: 'state' } };
const ACCEPT = { accept: null };
const DROP = { drop: null };
const REJECT = { reject: { type: 'icmpx', expr: 'port-unreachable' } };

interface ChainSpec {
  name: string;
  hook?: string;
  policy?: string;
  prio?: number;
  rules: unknown[][];
}

function ruleset(chains: ChainSpec[], opts: { family?: string; table?: string; sets?: Record<string, unknown[]> } = {}): unknown {
  const family = opts.family ?? 'inet';
  const table = opts.table ?? 'filter';
  const items: unknown[] = [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, { table: { family, name: table, handle: 1 } }];
  for (const [name, elem] of Object.entries(opts.sets ?? {})) items.push({ set: { family, name, table, type: 'inet_service', handle: 3, elem } });
  let handle = 10;
  for (const c of chains) {
    items.push({ chain: { family, table, name: c.name, handle: handle++, ...(c.hook ? { type: 'filter', hook: c.hook, prio: c.prio ?? 0, policy: c.policy ?? 'accept' } : {}) } });
    for (const expr of c.rules) items.push({ rule: { family, table, chain: c.name, handle: handle++, expr } });
  }
  return { nftables: items };
}

const input = (rules: unknown[][], policy = 'drop', sets?: Record<string, unknown[]>): unknown => ruleset([{ name: 'input', hook: 'input', policy, rules }], sets ? { sets } : {});
const udp = (port: number, ctStateValue: NftPacket['ctState'] = 'new'): NftPacket => ({ proto: 'udp', dport: port, iifname: 'eth0', ctState: ctStateValue });
const tcp = (port: number): NftPacket => ({ proto: 'tcp', dport: port, iifname: 'eth0', ctState: 'new' });

test('evaluateInput() with no input chain accepts', () => {
  assert.deepEqual(evaluateInput({ nftables: [{ metainfo: {} }] }, udp(69)), { verdict: 'accept' });
  assert.equal(inputChainCount({ nftables: [] }), 0);
});

test('evaluateInput() follows the policy when no rule matches', () => {
  const v = evaluateInput(input([[match(dport('tcp'), 22), ACCEPT]]), udp(69));
  assert.equal(v.verdict, 'drop');
  assert.match((v as { by: string }).by, /policy drop of chain input of table inet filter/);
  assert.deepEqual(evaluateInput(input([], 'accept'), udp(69)), { verdict: 'accept' });
});

test('evaluateInput() matches udp/tcp/th dport values, sets, ranges and named sets', () => {
  const full = input(
    [
      [match(dport('udp'), { set: [67, 69, { range: [32768, 60999] }] }), { counter: { packets: 0, bytes: 0 } }, ACCEPT],
      [match(meta('l4proto'), { set: ['tcp', 'udp'] }), match(dport('th'), 8080), ACCEPT],
      [match(dport('tcp'), '@web'), ACCEPT],
    ],
    'drop',
    { web: [8443, { range: [9000, 9010] }] },
  );
  for (const p of [udp(67), udp(69), udp(32768), udp(45000), udp(60999), udp(8080), tcp(8080), tcp(8443), tcp(9005)]) {
    assert.deepEqual(evaluateInput(full, p), { verdict: 'accept' }, `${p.proto}/${p.dport}`);
  }
  for (const p of [udp(68), udp(32767), udp(61000), tcp(69), tcp(9011), udp(8443)]) {
    assert.equal(evaluateInput(full, p).verdict, 'drop', `${p.proto}/${p.dport}`);
  }
});

test('evaluateInput(): a udp match never matches tcp, even negated', () => {
  assert.equal(evaluateInput(input([[match(dport('udp'), 5, '!='), ACCEPT]]), tcp(80)).verdict, 'drop');
  assert.equal(evaluateInput(input([[match(dport('udp'), 5, '!='), ACCEPT]]), udp(80)).verdict, 'accept');
});

test('evaluateInput(): iif lo and ct state established,related do not let a new packet in', () => {
  const rs = input([
    [match(meta('iif'), 'lo'), ACCEPT],
    [match(meta('iifname'), 'lo'), ACCEPT],
    [match(ctState, ['established', 'related'], 'in'), ACCEPT],
    [match(ctState, 'invalid', 'in'), DROP],
  ]);
  assert.equal(evaluateInput(rs, udp(69)).verdict, 'drop');
  assert.equal(evaluateInput(rs, { ...udp(69), iifname: 'lo' }).verdict, 'accept');
  assert.equal(evaluateInput(rs, udp(50000, 'established')).verdict, 'accept');
  assert.equal(evaluateInput(input([[match(meta('iifname'), 'eth*'), ACCEPT]]), udp(1)).verdict, 'accept');
  assert.equal(evaluateInput(input([[match(meta('iifname'), 'lo', '!='), match(dport('udp'), 69), ACCEPT]]), udp(69)).verdict, 'accept');
});

test('evaluateInput(): drop and reject name the rule', () => {
  const v = evaluateInput(input([[match(dport('udp'), 69), REJECT], [match(dport('udp'), 69), ACCEPT]], 'accept'), udp(69));
  assert.equal(v.verdict, 'drop');
  assert.match((v as { by: string }).by, /^`udp dport 69 reject` in chain input of table inet filter \(rule handle \d+\)$/);
  assert.equal(evaluateInput(input([[match(dport('udp'), 69), DROP]], 'accept'), udp(67)).verdict, 'accept');
});

test('evaluateInput(): jump, goto and return', () => {
  const rs = ruleset([
    { name: 'input', hook: 'input', policy: 'drop', rules: [[match(dport('udp'), { set: [67, 69, 4011] }), { jump: { target: 'pxe' } }], [match(dport('udp'), 69), ACCEPT]] },
    { name: 'pxe', rules: [[match(dport('udp'), 67), ACCEPT], [match(dport('udp'), 4011), { return: null }], [match(dport('udp'), 4011), ACCEPT]] },
  ]);
  assert.equal(evaluateInput(rs, udp(67)).verdict, 'accept');
  assert.equal(evaluateInput(rs, udp(69)).verdict, 'accept', 'the end of a jumped-to chain goes back to the rule after the jump');
  assert.equal(evaluateInput(rs, udp(4011)).verdict, 'drop', 'return goes back too, then the policy');
  const go = ruleset([
    { name: 'input', hook: 'input', policy: 'drop', rules: [[{ goto: { target: 'svc' } }], [ACCEPT]] },
    { name: 'svc', rules: [[match(dport('tcp'), 8080), ACCEPT]] },
  ]);
  assert.equal(evaluateInput(go, tcp(8080)).verdict, 'accept');
  assert.equal(evaluateInput(go, tcp(22)).verdict, 'drop', "a goto'd chain's end ends the calling chain: the accept after it is never reached");
});

test('evaluateInput(): verdict maps', () => {
  const rs = input([[{ vmap: { key: ctState, data: { set: [['invalid', DROP], ['established', ACCEPT], ['related', ACCEPT]] } } }], [{ vmap: { key: dport('udp'), data: { set: [[69, ACCEPT], [{ range: [100, 200] }, DROP]] } } }]]);
  assert.equal(evaluateInput(rs, udp(69)).verdict, 'accept');
  assert.equal(evaluateInput(rs, udp(150)).verdict, 'drop');
  assert.equal(evaluateInput(rs, udp(70)).verdict, 'drop');
  assert.equal(evaluateInput(rs, udp(70, 'established')).verdict, 'accept');
});

test('evaluateInput(): an unknown match is "cannot tell" only when it could change the answer', () => {
  const saddr = { payload: { protocol: 'ip', field: 'saddr' } };
  const net = { prefix: { addr: '10.0.0.0', len: 8 } };
  const v = evaluateInput(input([[match(saddr, net), match(dport('udp'), 69), ACCEPT]]), udp(69));
  assert.equal(v.verdict, 'unknown');
  assert.match((v as { why: string }).why, /ip saddr 10\.0\.0\.0\/8 udp dport 69 accept.*ip saddr/);
  // It does not apply to port 67 (dport differs): the policy decides.
  assert.equal(evaluateInput(input([[match(saddr, net), match(dport('udp'), 69), ACCEPT]]), udp(67)).verdict, 'drop');
  // Both ways the packet is accepted.
  assert.equal(evaluateInput(input([[match(saddr, net), ACCEPT], [match(dport('udp'), 69), ACCEPT]]), udp(69)).verdict, 'accept');
  // A rule without a verdict (log) never matters.
  assert.equal(evaluateInput(input([[match(saddr, net), { log: null }], [match(dport('udp'), 69), ACCEPT]]), udp(69)).verdict, 'accept');
  // An unknown statement (a rate limit) before an accept: cannot tell, never ok.
  const limited = evaluateInput(input([[match(dport('udp'), 69), { limit: { rate: 10, per: 'second' } }, ACCEPT]]), udp(69));
  assert.equal(limited.verdict, 'unknown');
  // But a drop in a later base chain still decides.
  const two = ruleset([
    { name: 'a', hook: 'input', prio: 0, rules: [[match(saddr, net), DROP]] },
    { name: 'b', hook: 'input', prio: 10, rules: [[match(dport('udp'), 69), DROP]] },
  ]);
  assert.equal(evaluateInput(two, udp(69)).verdict, 'drop');
  assert.equal(evaluateInput(two, udp(67)).verdict, 'unknown');
});

test('evaluateInput(): every input base chain must accept; ip6, nat and other hooks do not count', () => {
  const a = ruleset([{ name: 'input', hook: 'input', policy: 'accept', rules: [] }]);
  const b = ruleset([{ name: 'INPUT', hook: 'input', policy: 'drop', rules: [] }], { family: 'ip', table: 'filter' });
  const both = { nftables: [...(a as { nftables: unknown[] }).nftables, ...(b as { nftables: unknown[] }).nftables] };
  assert.equal(evaluateInput(both, udp(69)).verdict, 'drop');
  const v6 = ruleset([{ name: 'input', hook: 'input', policy: 'drop', rules: [] }], { family: 'ip6' });
  assert.equal(evaluateInput(v6, udp(69)).verdict, 'accept');
  const out = ruleset([{ name: 'output', hook: 'output', policy: 'drop', rules: [] }]);
  assert.equal(evaluateInput(out, udp(69)).verdict, 'accept');
});

test('evaluateInput() refuses what is not nft JSON', () => {
  assert.throws(() => evaluateInput({ rules: [] }, udp(69)), NftRulesetError);
  assert.throws(() => evaluateInput('x', udp(69)), /nft -j list ruleset/);
});

test('ruleText() prints rules as nft does, roughly', () => {
  assert.equal(ruleText([match(dport('udp'), { set: [67, { range: [1000, 2000] }] }), { counter: null }, ACCEPT]), 'udp dport { 67, 1000-2000 } counter accept');
  assert.equal(ruleText([match(ctState, ['established', 'related'], 'in'), ACCEPT]), 'ct state established,related accept');
  assert.equal(ruleText([match(meta('iifname'), 'lo', '!='), { jump: { target: 'x' } }]), 'iifname != lo jump x');
});
