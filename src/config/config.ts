/**
 * Fleetboot's configuration: the defaults (schema.ts), then the config file
 * (JSON), then command-line flags. Every key is validated at start by its one
 * field in the schema, then the rules that involve two keys; the result is a
 * new, deep-frozen object (the inputs are never changed), passed to every
 * service (nothing reads process.env deep inside).
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { FleetbootError } from '../lib/errors.js';
import { configError, Field, parseField, type FieldContext } from './fields.js';
import { CONFIG_SCHEMA, RULES } from './schema.js';
import type { ConfigOverrides, FleetbootConfig } from './types.js';

export type {
  ConfigOverrides,
  DhcpMode,
  DhcpOptionConfig,
  DhcpPoolConfig,
  DhcpReservationConfig,
  FleetbootConfig,
  LogFormat,
  LogLevel,
  PortRange,
  UnknownPolicy,
} from './types.js';
export { isIPv4 } from './fields.js';
export { BIOS_MENU_PROMPT_MAX, DEBIAN_SIGNED_DIR, POOL_DEFAULTS } from './schema.js';

/** Where the packaged iPXE binaries live on Debian (package `ipxe`). */
export const DEBIAN_IPXE_DIR = '/usr/lib/ipxe';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every key of a layer must be in the schema, and every section an object. */
function checkLayer(layer: unknown, node: Record<string, unknown>, prefix: string): void {
  if (!isRecord(layer)) throw configError(prefix === '' ? '(config)' : prefix.slice(0, -1), 'must be an object', layer);
  for (const [k, v] of Object.entries(layer)) {
    const sub = node[k];
    if (sub === undefined || !Object.hasOwn(node, k)) {
      throw new FleetbootError('CONFIG', `Unknown configuration key '${prefix}${k}': current value is ${JSON.stringify(v) ?? String(v)}`);
    }
    if (!(sub instanceof Field) && v !== undefined) checkLayer(v, sub as Record<string, unknown>, `${prefix}${k}.`);
  }
}

/** The value of `path` in the last layer that sets it (undefined: none does). */
function lookup(layers: readonly unknown[], path: readonly string[]): unknown {
  for (let i = layers.length - 1; i >= 0; i--) {
    let v: unknown = layers[i];
    for (const k of path) v = isRecord(v) ? v[k] : undefined;
    if (v !== undefined) return v;
  }
  return undefined;
}

/** A new config object of the schema's shape, each key parsed by its field. */
function build(node: Record<string, unknown>, layers: readonly unknown[], path: string[], ctx: FieldContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, sub] of Object.entries(node)) {
    const p = [...path, k];
    if (sub instanceof Field) {
      const seen = lookup(layers, p);
      out[k] = parseField(sub, seen === undefined ? sub.defaultFor(ctx) : seen, p.join('.'), ctx);
    } else {
      out[k] = build(sub as Record<string, unknown>, layers, p, ctx);
    }
  }
  return out;
}

/**
 * The config from its layers (later ones win), validated, as a new object.
 * A directory that no layer sets follows the data directory.
 */
function resolveConfig(layers: readonly unknown[], cwd: string): FleetbootConfig {
  layers.forEach((l) => checkLayer(l, CONFIG_SCHEMA as unknown as Record<string, unknown>, ''));
  const dataDirField: Field<unknown> = CONFIG_SCHEMA.dataDir;
  const seenDataDir = lookup(layers, ['dataDir']);
  const dataDir = parseField(dataDirField, seenDataDir === undefined ? CONFIG_SCHEMA.dataDir.defaultFor({ cwd, dataDir: '' }) : seenDataDir, 'dataDir', { cwd, dataDir: '' }) as string;
  // The one cast: build() gave every key of the schema, whose type is SchemaOf<FleetbootConfig>.
  const c = build(CONFIG_SCHEMA as unknown as Record<string, unknown>, layers, [], { cwd, dataDir }) as unknown as FleetbootConfig;
  for (const rule of RULES) {
    const err = rule.check(c);
    if (err !== null) throw err;
  }
  return c;
}

function deepFreeze<T>(o: T): Readonly<T> {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** The defaults, for this working directory: a new, mutable object. */
export function defaultConfig(cwd: string = process.cwd()): FleetbootConfig {
  return resolveConfig([], cwd);
}

/**
 * Validate a config (whole or partial: missing keys take their defaults, and
 * relative paths resolve against `cwd`) into a new, deep-frozen object. The
 * input is not changed. Throws FleetbootError('CONFIG') naming the key and
 * the value seen.
 */
export function validateConfig(input: unknown, cwd: string = process.cwd()): Readonly<FleetbootConfig> {
  return deepFreeze(resolveConfig([input], cwd));
}

export function readConfigFile(file: string): ConfigOverrides {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FleetbootError('CONFIG', `Cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new FleetbootError('CONFIG', `Config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(parsed)) throw new FleetbootError('CONFIG', `Config file ${file} must hold a JSON object`);
  checkLayer(parsed, CONFIG_SCHEMA as unknown as Record<string, unknown>, '');
  // Keys checked here; values when the layers are resolved (loadConfig).
  return parsed as ConfigOverrides;
}

/** The IPv4 address of an interface, or of the first non-internal interface. */
export function detectServerIp(iface: string | null): string | null {
  const all = networkInterfaces();
  const names = iface ? [iface] : Object.keys(all);
  for (const name of names) {
    for (const a of all[name] ?? []) {
      if (a.family === 'IPv4' && (iface !== null || !a.internal)) return a.address;
    }
  }
  return null;
}

/**
 * Build the effective configuration: defaults, then the config file, then
 * flags; validated, new and deep-frozen. A TFTP root or boot-environment
 * directory that was not set follows the data directory.
 */
export function loadConfig(opts: { file?: string; overrides?: ConfigOverrides; cwd?: string }): Readonly<FleetbootConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const fromFile = opts.file ? readConfigFile(opts.file) : {};
  return deepFreeze(resolveConfig([fromFile, opts.overrides ?? {}], cwd));
}

/** The base URL clients use for HTTP. */
export function httpBaseUrl(c: Readonly<FleetbootConfig>, serverIp: string): string {
  if (c.http.publicUrl) return c.http.publicUrl.replace(/\/+$/, '');
  return `http://${serverIp}:${c.http.port}`;
}
