/**
 * The kinds of config value, as declarations: a field says what its key
 * holds (an integer in a range, one of a few words, a string of a pattern,
 * an IPv4 address, a port, a path, or a list parsed by its own function),
 * its default and one line of description. `parseField` is the one
 * interpreter of those declarations: it turns the value seen (unknown, from
 * a JSON file or flags) into the value used, never mutating it, or throws a
 * FleetbootError('CONFIG') that names the key and the value seen, in Deno
 * std's style: `'tftp.port' must be a port number 0-65535: current value is 70000`.
 */
import { resolve } from 'node:path';
import { FleetbootError } from '../lib/errors.js';

/** What defaults and paths may depend on. */
export interface FieldContext {
  /** Relative paths resolve against this. */
  readonly cwd: string;
  /** The data directory, already resolved: other directories follow it unless set. */
  readonly dataDir: string;
}

/** A value, or a function of the context that gives it (`tftp.root` follows `dataDir`). */
export type Default<T> = T | ((ctx: FieldContext) => T);

/** What a field accepts. Every kind but `custom` is interpreted by `parseField` alone. */
export type Rule =
  | { readonly type: 'integer'; readonly min: number; readonly max: number }
  | { readonly type: 'boolean' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | {
      readonly type: 'string';
      readonly minLength: number;
      readonly maxLength: number;
      /** A pattern the whole string must match, and what it means ("printable ASCII"). */
      readonly pattern?: { readonly re: RegExp; readonly means: string };
      /** A further check: why the string is refused ("contains ..."), or null. */
      readonly problem?: (s: string) => string | null;
    }
  | { readonly type: 'ipv4' }
  | { readonly type: 'port'; readonly min: 0 | 1 }
  | { readonly type: 'path' }
  | {
      readonly type: 'custom';
      /** What the value must be, for documentation ("a list of pools"). */
      readonly expects: string;
      /** The value seen -> a new value; throws configError(key, ...) naming the exact sub-key. */
      readonly parse: (value: unknown, key: string, ctx: FieldContext) => unknown;
    };

/** One configuration key: what it accepts, its default, what it is for. */
export class Field<T> {
  constructor(
    readonly rule: Rule,
    readonly nullable: boolean,
    readonly defaultValue: Default<T>,
    /** One line: what the key does. */
    readonly doc: string,
  ) {}

  /** The default for this context (not yet validated). */
  defaultFor(ctx: FieldContext): T {
    const d = this.defaultValue;
    return typeof d === 'function' ? (d as (ctx: FieldContext) => T)(ctx) : d;
  }
}

type Maybe<T, N extends boolean> = N extends true ? T | null : T;
interface Options<T, N extends boolean> {
  default: Default<Maybe<T, N>>;
  doc: string;
  /** null is accepted too (and means what `doc` says). */
  nullable?: N;
}

function field<T, N extends boolean>(rule: Rule, o: Options<T, N>): Field<Maybe<T, N>> {
  return new Field<Maybe<T, N>>(rule, o.nullable ?? false, o.default, o.doc);
}

export function integer<N extends boolean = false>(min: number, max: number, o: Options<number, N>): Field<Maybe<number, N>> {
  return field({ type: 'integer', min, max }, o);
}
export function boolean<N extends boolean = false>(o: Options<boolean, N>): Field<Maybe<boolean, N>> {
  return field({ type: 'boolean' }, o);
}
export function oneOf<const V extends readonly string[], N extends boolean = false>(values: V, o: Options<V[number], N>): Field<Maybe<V[number], N>> {
  return field({ type: 'enum', values }, o);
}
export function string<N extends boolean = false>(
  o: Options<string, N> & { minLength?: number; maxLength?: number; pattern?: { re: RegExp; means: string }; problem?: (s: string) => string | null },
): Field<Maybe<string, N>> {
  const rule: Rule = { type: 'string', minLength: o.minLength ?? 0, maxLength: o.maxLength ?? Number.MAX_SAFE_INTEGER, ...(o.pattern ? { pattern: o.pattern } : {}), ...(o.problem ? { problem: o.problem } : {}) };
  return field(rule, o);
}
export function ipv4<N extends boolean = false>(o: Options<string, N>): Field<Maybe<string, N>> {
  return field({ type: 'ipv4' }, o);
}
/** A UDP/TCP port 1-65535; `allowZero`: 0 asks the kernel for any free port (tests). */
export function port<N extends boolean = false>(o: Options<number, N> & { allowZero?: boolean }): Field<Maybe<number, N>> {
  return field({ type: 'port', min: o.allowZero ? 0 : 1 }, o);
}
/** A file-system path; a relative one is resolved against the working directory. */
export function path<N extends boolean = false>(o: Options<string, N>): Field<Maybe<string, N>> {
  return field({ type: 'path' }, o);
}
export function custom<T, N extends boolean = false>(
  expects: string,
  parse: (value: unknown, key: string, ctx: FieldContext) => T,
  o: Options<T, N>,
): Field<Maybe<T, N>> {
  return field({ type: 'custom', expects, parse }, o);
}

/** The value as it appears in a message. */
export function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `'key' <predicate>: current value is <value>`, e.g. predicate "must be an IPv4 address". */
export function configError(key: string, predicate: string, value: unknown): FleetbootError {
  return new FleetbootError('CONFIG', `'${key}' ${predicate}: current value is ${show(value)}`);
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

/** What a value of this rule must be, as the message says it ("an integer 1-1000"). */
export function expects(rule: Rule, nullable = false): string {
  let what: string;
  switch (rule.type) {
    case 'integer':
      what = `an integer ${rule.min}-${rule.max}`;
      break;
    case 'boolean':
      if (nullable) return 'true, false or null';
      what = 'true or false';
      break;
    case 'enum':
      what = `one of ${rule.values.map((v) => `'${v}'`).join(', ')}`;
      break;
    case 'string':
      what = rule.pattern ? rule.pattern.means : 'a string';
      break;
    case 'ipv4':
      what = 'an IPv4 address';
      break;
    case 'port':
      what = `a port number ${rule.min}-65535`;
      break;
    case 'path':
      what = 'a path';
      break;
    case 'custom':
      what = rule.expects;
      break;
  }
  return nullable ? `${what} or null` : what;
}

/**
 * The value seen at `key` -> the value to use (a fresh object for anything
 * that is not a primitive), or a FleetbootError('CONFIG') naming key and value.
 */
export function parseField(f: Field<unknown>, value: unknown, key: string, ctx: FieldContext): unknown {
  if (value === null && f.nullable) return null;
  const rule = f.rule;
  const fail = (predicate = `must be ${expects(rule, f.nullable)}`): never => {
    throw configError(key, predicate, value);
  };
  switch (rule.type) {
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < rule.min || value > rule.max) fail();
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') fail();
      return value;
    case 'enum':
      if (typeof value !== 'string' || !rule.values.includes(value)) fail();
      return value;
    case 'string': {
      if (typeof value !== 'string') return fail();
      if (value.length < rule.minLength) fail(`must be at least ${rule.minLength} characters`);
      if (value.length > rule.maxLength) fail(`must be at most ${rule.maxLength} characters`);
      if (rule.pattern && !rule.pattern.re.test(value)) fail(`must be ${rule.pattern.means}`);
      const p = rule.problem?.(value) ?? null;
      if (p !== null) fail(p);
      return value;
    }
    case 'ipv4':
      if (typeof value !== 'string' || !isIPv4(value)) fail();
      return value;
    case 'port':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < rule.min || value > 65535) fail();
      return value;
    case 'path':
      if (typeof value !== 'string' || value === '' || value.includes('\0')) return fail(`must be a path${f.nullable ? ' or null' : ''}`);
      return resolve(ctx.cwd, value);
    case 'custom':
      return rule.parse(value, key, ctx);
  }
}
