/**
 * Would the host's nftables ruleset let this packet in? A small evaluator of
 * `nft -j list ruleset` (libnftables' JSON schema, nft 1.0) for the input
 * hook, used by `fleetboot doctor` to tell whether a configured port is
 * reachable. Pure: the ruleset and the packet come in, a verdict goes out.
 *
 * What it understands, the rule forms seen in hand-written, iptables-nft and
 * firewalld rulesets:
 * - base chains of the ip and inet families on the input hook, their policy
 *   (no policy: accept); every such chain must accept (a drop in any of them
 *   is final, an accept only ends that chain);
 * - matches on udp/tcp/th dport (values, anonymous and named sets, ranges,
 *   !=, < > <= >=), meta l4proto / ip protocol, meta nfproto / protocol,
 *   iif / iifname (a trailing * wildcard), ct state;
 * - verdict maps (vmap) on those keys;
 * - accept, drop, reject, jump, goto, return; counter and log do nothing.
 *
 * Anything else (source addresses, rate limits, marks, xt matches...) makes
 * the match unknown. A rule with an unknown match is followed both ways; when
 * the two ways end differently the answer is `unknown` with the rule that
 * decided it: never a guessed accept.
 */

/** The packet a client would send to the server. */
export interface NftPacket {
  proto: 'udp' | 'tcp';
  dport: number;
  /** The interface it arrives on (the one the server serves). */
  iifname: string;
  /** Conntrack's view: a client's first packet is new; an answer to what the server sent is established. */
  ctState: 'new' | 'established';
}

export type NftVerdict =
  | { verdict: 'accept' }
  | { verdict: 'drop'; by: string }
  | { verdict: 'unknown'; why: string };

type Value = number | string;
type Tri = true | false | { unknown: string };

interface Chain {
  name: string;
  family: string;
  table: string;
  hook: string | null;
  type: string | null;
  prio: number;
  policy: string | null;
  rules: Array<{ handle: number | null; expr: unknown[] }>;
}

interface Table {
  chains: Map<string, Chain>;
  sets: Map<string, unknown[]>;
}

export class NftRulesetError extends Error {
  override readonly name = 'NftRulesetError';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The one key of a JSON object such as {"accept": null}; null when it has not exactly one. */
function onlyKey(o: unknown): string | null {
  if (!isRecord(o)) return null;
  const keys = Object.keys(o);
  return keys.length === 1 ? (keys[0] as string) : null;
}

const tableKey = (family: string, table: string): string => `${family} ${table}`;

/** Tables, chains and sets of `nft -j list ruleset`; throws NftRulesetError when it is not that shape. */
export function parseRuleset(json: unknown): Map<string, Table> {
  if (!isRecord(json) || !Array.isArray(json.nftables)) throw new NftRulesetError('expected the output of `nft -j list ruleset` (an object with an "nftables" array)');
  const tables = new Map<string, Table>();
  const table = (family: string, name: string): Table => {
    const k = tableKey(family, name);
    let t = tables.get(k);
    if (!t) {
      t = { chains: new Map(), sets: new Map() };
      tables.set(k, t);
    }
    return t;
  };
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  for (const item of json.nftables as unknown[]) {
    if (!isRecord(item)) continue;
    if (isRecord(item.table)) {
      const f = str(item.table.family);
      const n = str(item.table.name);
      if (f && n) table(f, n);
    } else if (isRecord(item.chain)) {
      const c = item.chain;
      const f = str(c.family);
      const t = str(c.table);
      const n = str(c.name);
      if (!f || !t || !n) continue;
      const existing = table(f, t).chains.get(n);
      table(f, t).chains.set(n, {
        name: n,
        family: f,
        table: t,
        hook: str(c.hook),
        type: str(c.type),
        prio: typeof c.prio === 'number' ? c.prio : 0,
        policy: str(c.policy),
        rules: existing?.rules ?? [],
      });
    } else if (isRecord(item.rule)) {
      const r = item.rule;
      const f = str(r.family);
      const t = str(r.table);
      const n = str(r.chain);
      if (!f || !t || !n || !Array.isArray(r.expr)) continue;
      const tb = table(f, t);
      let ch = tb.chains.get(n);
      if (!ch) {
        ch = { name: n, family: f, table: t, hook: null, type: null, prio: 0, policy: null, rules: [] };
        tb.chains.set(n, ch);
      }
      ch.rules.push({ handle: typeof r.handle === 'number' ? r.handle : null, expr: r.expr as unknown[] });
    } else if (isRecord(item.set) || isRecord(item.map)) {
      const s = (item.set ?? item.map) as Record<string, unknown>;
      const f = str(s.family);
      const t = str(s.table);
      const n = str(s.name);
      if (!f || !t || !n) continue;
      table(f, t).sets.set(n, Array.isArray(s.elem) ? (s.elem as unknown[]) : []);
    }
  }
  return tables;
}

// ---- text, for messages ----------------------------------------------------

function leftText(left: unknown): string {
  if (isRecord(left)) {
    if (isRecord(left.payload)) return `${String(left.payload.protocol ?? 'payload')} ${String(left.payload.field ?? '?')}`;
    if (isRecord(left.meta)) {
      const k = String(left.meta.key);
      return k === 'iif' || k === 'iifname' || k === 'oif' || k === 'oifname' ? k : `meta ${k}`;
    }
    if (isRecord(left.ct)) return `ct ${String(left.ct.key)}`;
  }
  return short(JSON.stringify(left));
}

function valueText(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v.startsWith('@') ? v : JSON.stringify(v).replace(/^"([A-Za-z0-9_.*-]+)"$/, '$1');
  if (Array.isArray(v)) return v.map(valueText).join(',');
  if (isRecord(v)) {
    if (Array.isArray(v.set)) return `{ ${v.set.map(valueText).join(', ')} }`;
    if (Array.isArray(v.range)) return `${valueText(v.range[0])}-${valueText(v.range[1])}`;
    if (isRecord(v.prefix)) return `${valueText(v.prefix.addr)}/${String(v.prefix.len)}`;
    if (isRecord(v.elem)) return valueText(v.elem.val);
  }
  return short(JSON.stringify(v));
}

function short(s: string | undefined, max = 60): string {
  const t = s ?? '?';
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** One statement of a rule as `nft list ruleset` would roughly print it. */
function stmtText(e: unknown): string {
  const k = onlyKey(e);
  if (k === null || !isRecord(e)) return short(JSON.stringify(e));
  const v = e[k];
  switch (k) {
    case 'match': {
      if (!isRecord(v)) break;
      const op = v.op === '==' || v.op === 'in' ? '' : `${String(v.op)} `;
      return `${leftText(v.left)} ${op}${valueText(v.right)}`;
    }
    case 'accept':
    case 'drop':
    case 'return':
    case 'counter':
    case 'log':
      return k;
    case 'reject':
      return 'reject';
    case 'jump':
    case 'goto':
      return `${k} ${isRecord(v) ? String(v.target) : '?'}`;
    case 'vmap':
      if (isRecord(v)) {
        const data = isRecord(v.data) && Array.isArray(v.data.set) ? v.data.set : [];
        return `${leftText(v.key)} vmap { ${data.map((p) => (Array.isArray(p) ? `${valueText(p[0])} : ${onlyKey(p[1]) ?? '?'}` : '?')).join(', ')} }`;
      }
      break;
    default:
      break;
  }
  return short(`${k} ${JSON.stringify(v)}`);
}

/** A rule as text: "udp dport 69 drop". */
export function ruleText(expr: readonly unknown[]): string {
  return expr.map(stmtText).join(' ');
}

function where(c: Chain, handle: number | null): string {
  return `chain ${c.name} of table ${c.family} ${c.table}${handle === null ? '' : ` (rule handle ${handle})`}`;
}

// ---- matching ----------------------------------------------------------------

const PROTO_NUMBERS: Record<string, number> = { tcp: 6, udp: 17 };

/** The packet's value for a match's left side: a value, 'absent' (that header is not in the packet), or unknown. */
function keyValue(left: unknown, p: NftPacket): { value: Value } | 'absent' | { unknown: string } {
  if (isRecord(left)) {
    if (isRecord(left.payload)) {
      const { protocol, field } = left.payload;
      if (protocol === 'udp' || protocol === 'tcp' || protocol === 'th') {
        if (protocol !== 'th' && protocol !== p.proto) return 'absent';
        if (field === 'dport') return { value: p.dport };
        return { unknown: `${String(protocol)} ${String(field)} (the client's value is not known)` };
      }
      if (protocol === 'ip' && field === 'protocol') return { value: p.proto };
      if (protocol === 'ip6') return 'absent';
      return { unknown: `${leftText(left)} (addresses and other header fields are not evaluated)` };
    }
    if (isRecord(left.meta)) {
      switch (left.meta.key) {
        case 'l4proto':
          return { value: p.proto };
        case 'nfproto':
          return { value: 'ipv4' };
        case 'protocol':
          return { value: 'ip' };
        case 'iif':
        case 'iifname':
          return { value: p.iifname };
        default:
          return { unknown: `meta ${String(left.meta.key)}` };
      }
    }
    if (isRecord(left.ct)) {
      if (left.ct.key === 'state') return { value: p.ctState };
      return { unknown: `ct ${String(left.ct.key)}` };
    }
  }
  return { unknown: short(JSON.stringify(left)) };
}

function sameValue(a: Value, b: unknown, wildcard: boolean): Tri {
  if (isRecord(b) && isRecord(b.elem)) return sameValue(a, b.elem.val, wildcard);
  if (typeof b === 'number') {
    if (typeof a === 'number') return a === b;
    if (a in PROTO_NUMBERS) return PROTO_NUMBERS[a] === b;
    return { unknown: `value ${b}` };
  }
  if (typeof b === 'string') {
    if (typeof a === 'number') return /^\d+$/.test(b) ? Number(b) === a : { unknown: `named value ${JSON.stringify(b)}` };
    if (wildcard && b.endsWith('*')) return a.startsWith(b.slice(0, -1));
    return a === b;
  }
  if (isRecord(b) && Array.isArray(b.range) && typeof a === 'number') {
    const [lo, hi] = b.range as unknown[];
    if (typeof lo === 'number' && typeof hi === 'number') return a >= lo && a <= hi;
  }
  return { unknown: `value ${short(JSON.stringify(b))}` };
}

/** Is `a` one of the elements? */
function memberOf(a: Value, elems: readonly unknown[], wildcard: boolean): Tri {
  let unknown: { unknown: string } | null = null;
  for (const e of elems) {
    const r = sameValue(a, e, wildcard);
    if (r === true) return true;
    if (r !== false) unknown = r;
  }
  return unknown ?? false;
}

function elementsOf(right: unknown, t: Table): unknown[] | { unknown: string } {
  if (typeof right === 'string' && right.startsWith('@')) {
    const s = t.sets.get(right.slice(1));
    return s ?? { unknown: `set ${right} is not in the ruleset` };
  }
  if (Array.isArray(right)) return right;
  if (isRecord(right) && Array.isArray(right.set)) return right.set;
  return [right];
}

function not(t: Tri): Tri {
  return t === true ? false : t === false ? true : t;
}

function evalMatch(m: Record<string, unknown>, p: NftPacket, t: Table): Tri {
  const key = keyValue(m.left, p);
  if (key === 'absent') return false;
  if ('unknown' in key) return key;
  const wildcard = isRecord(m.left) && isRecord(m.left.meta) && m.left.meta.key === 'iifname';
  const op = m.op;
  if (op === '==' || op === 'in' || op === '!=') {
    const elems = elementsOf(m.right, t);
    if (!Array.isArray(elems)) return elems;
    const member = memberOf(key.value, elems, wildcard);
    return op === '!=' ? not(member) : member;
  }
  if ((op === '<' || op === '>' || op === '<=' || op === '>=') && typeof key.value === 'number' && typeof m.right === 'number') {
    const a = key.value;
    const b = m.right;
    return op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b;
  }
  return { unknown: `operator ${String(op)}` };
}

// ---- chains ------------------------------------------------------------------

/**
 * What a rule or a chain came to: a verdict, unknown, 'next' (the rule
 * decided nothing: on with the next one) or 'end' (this chain is done
 * without a verdict: `return`, the end of its rules, or a goto'd chain that
 * ended).
 */
type Flow = { kind: 'accept' } | { kind: 'drop'; by: string } | { kind: 'unknown'; why: string } | { kind: 'next' } | { kind: 'end' };

const MAX_STEPS = 20_000;
const MAX_DEPTH = 16;

function sameFlow(a: Flow, b: Flow): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'unknown' && b.kind === 'unknown') return a.why === b.why;
  return true;
}

class Evaluator {
  private steps = 0;
  constructor(
    private readonly t: Table,
    private readonly p: NftPacket,
  ) {}

  /** Run chain `c` from rule `from`: a verdict, unknown or 'end'. */
  run(c: Chain, from: number, depth: number): Flow {
    if (depth > MAX_DEPTH) return { kind: 'unknown', why: `jumps nested deeper than ${MAX_DEPTH} at ${where(c, null)}` };
    for (let i = from; i < c.rules.length; i++) {
      if (++this.steps > MAX_STEPS) return { kind: 'unknown', why: 'the ruleset is too large to follow' };
      const rule = c.rules[i] as Chain['rules'][number];
      const outcome = this.rule(c, rule, depth);
      if ('branch' in outcome) {
        // A match we cannot evaluate: the result if it matched, and if it did not.
        const rest = this.run(c, i + 1, depth);
        const matched = outcome.ifMatched.kind === 'next' ? rest : outcome.ifMatched;
        if (sameFlow(matched, rest)) return rest;
        return { kind: 'unknown', why: `cannot tell whether \`${ruleText(rule.expr)}\` (${where(c, rule.handle)}) applies: it matches on ${outcome.branch}` };
      }
      if (outcome.kind === 'next') continue;
      return outcome;
    }
    return { kind: 'end' };
  }

  /** The verdict statement `k` (accept, drop, reject, return, jump, goto). */
  private verdict(c: Chain, k: string, v: unknown, by: string, depth: number): Flow | null {
    if (k === 'accept') return { kind: 'accept' };
    if (k === 'drop' || k === 'reject') return { kind: 'drop', by };
    if (k === 'return') return { kind: 'end' };
    if ((k === 'jump' || k === 'goto') && isRecord(v)) {
      const target = typeof v.target === 'string' ? this.t.chains.get(v.target) : undefined;
      if (!target) return { kind: 'unknown', why: `${where(c, null)} jumps to a chain ${JSON.stringify(v.target)} that is not in the ruleset` };
      const r = this.run(target, 0, depth + 1);
      // jump: back here after the target ends; goto: the target's end is this chain's end.
      if (r.kind === 'end') return k === 'jump' ? { kind: 'next' } : { kind: 'end' };
      return r;
    }
    return null;
  }

  /** One rule: 'next' when it does not apply or decides nothing, a flow, or a branch when a match is unknown. */
  private rule(c: Chain, rule: Chain['rules'][number], depth: number): Flow | { branch: string; ifMatched: Flow } {
    let unknown: string | null = null;
    let result: Flow = { kind: 'next' };
    const by = `\`${ruleText(rule.expr)}\` in ${where(c, rule.handle)}`;
    for (const e of rule.expr) {
      const k = onlyKey(e);
      const v = k !== null && isRecord(e) ? e[k] : undefined;
      if (k === 'match' && isRecord(v)) {
        const m = evalMatch(v, this.p, this.t);
        if (m === false) return { kind: 'next' };
        if (m !== true) unknown ??= m.unknown;
        continue;
      }
      if (k === 'counter' || k === 'log') continue;
      const verdict = k === null ? null : this.verdict(c, k, v, by, depth);
      if (verdict !== null) result = verdict;
      else if (k === 'vmap' && isRecord(v)) {
        const key = keyValue(v.key, this.p);
        if (key === 'absent') return { kind: 'next' };
        if ('unknown' in key) {
          unknown ??= key.unknown;
          result = { kind: 'unknown', why: `cannot tell what \`${ruleText(rule.expr)}\` (${where(c, rule.handle)}) decides: it maps ${key.unknown}` };
        } else {
          const pairs = isRecord(v.data) && Array.isArray(v.data.set) ? (v.data.set as unknown[]) : [];
          let picked: unknown = null;
          for (const pair of pairs) {
            if (!Array.isArray(pair)) continue;
            const same = memberOf(key.value, elementsOfMapKey(pair[0]), false);
            if (same === true) {
              picked = pair[1];
              break;
            }
            if (same !== false) {
              result = { kind: 'unknown', why: `cannot tell what \`${ruleText(rule.expr)}\` (${where(c, rule.handle)}) decides: its key ${same.unknown}` };
              break;
            }
          }
          const pk = onlyKey(picked);
          if (pk !== null && isRecord(picked)) result = this.verdict(c, pk, picked[pk], by, depth) ?? { kind: 'unknown', why: `the map of ${by} gives ${stmtText(picked)}` };
        }
      } else {
        // A statement or match this evaluator does not know.
        unknown ??= stmtText(e);
      }
      if (result.kind !== 'next') break;
    }
    if (unknown !== null) {
      if (result.kind === 'next') return { kind: 'next' }; // matched or not, the rule decides nothing
      return { branch: unknown, ifMatched: result };
    }
    return result;
  }
}

/** A verdict map's key: one value, a range, or a set of them. */
function elementsOfMapKey(k: unknown): unknown[] {
  return isRecord(k) && Array.isArray(k.set) ? k.set : [k];
}

/**
 * The verdict of every ip/inet input base chain of `ruleset` (as `nft -j
 * list ruleset` prints it) for packet `p`: accept only when each of them
 * accepts it.
 */
export function evaluateInput(ruleset: unknown, p: NftPacket): NftVerdict {
  const tables = parseRuleset(ruleset);
  const bases: Array<{ t: Table; c: Chain }> = [];
  for (const t of tables.values()) {
    for (const c of t.chains.values()) {
      if (c.hook === 'input' && (c.family === 'ip' || c.family === 'inet') && (c.type === null || c.type === 'filter')) bases.push({ t, c });
    }
  }
  bases.sort((a, b) => a.c.prio - b.c.prio);
  let unknown: string | null = null;
  for (const { t, c } of bases) {
    const flow = new Evaluator(t, p).run(c, 0, 0);
    const end: Flow = flow.kind === 'end' || flow.kind === 'next' ? (c.policy === 'drop' ? { kind: 'drop', by: `the policy drop of ${where(c, null)}` } : { kind: 'accept' }) : flow;
    if (end.kind === 'drop') return { verdict: 'drop', by: end.by };
    if (end.kind === 'unknown') unknown ??= end.why;
  }
  return unknown === null ? { verdict: 'accept' } : { verdict: 'unknown', why: unknown };
}

/** Input base chains in the ruleset (none: nftables filters nothing coming in). */
export function inputChainCount(ruleset: unknown): number {
  let n = 0;
  for (const t of parseRuleset(ruleset).values()) for (const c of t.chains.values()) if (c.hook === 'input' && (c.family === 'ip' || c.family === 'inet')) n++;
  return n;
}
