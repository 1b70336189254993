/**
 * The endpoint agent <-> server protocol (HTTPS, JSON): types, paths, the
 * bytes that are signed, and the validators of what either side receives.
 * Pure (node:crypto only for hashing and signatures); shared by the
 * server (src/endpoints/, src/http/routes/endpoint.ts) and the agent
 * (src/endpoint-agent/), so the agent bundle carries no server code.
 *
 * The endpoint agent (`fleetboot-agent`) runs on installed machines. It is
 * not the imaging agent of the boot environment (`fleetboot-imager`,
 * src/agent/, src/imaging/protocol.ts).
 *
 * Trust:
 * - The agent trusts only the Fleetboot CA it pinned at enrolment (its
 *   SHA-256 given to `enroll --ca-sha256`), never the system's store; the
 *   server certificate may be renewed freely under that CA.
 * - Each agent has its own Ed25519 key (kept 0600 on the machine). Its id is
 *   the SHA-256 of the public key (SPKI DER), first 32 hex digits, so the
 *   id cannot be claimed without the key.
 * - Possession of the key is proven by signing a server nonce (single use,
 *   60 s): once at enrolment, then whenever the agent opens a session.
 *   Sessions are short (minutes) and checked against the agent's state on
 *   every request, so a revoked agent's next request gets 401.
 * - Packages are signed by the server's package key (Ed25519, given at
 *   enrolment over the pinned channel); the agent checks the signature and
 *   every file's sha256 before it runs anything.
 *
 *   GET  /endpoint/v1/ca                  -> the CA certificate (PEM text); no auth: the agent
 *                                            compares its SHA-256 with the pinned one
 *   POST /endpoint/v1/challenge           -> Challenge
 *   POST /endpoint/v1/enroll              EnrollRequest -> EnrollAnswer
 *   POST /endpoint/v1/session             SessionRequest -> SessionAnswer
 *   GET  /endpoint/v1/work?wait=S&running=ID,ID   (Bearer session) -> WorkAnswer
 *   POST /endpoint/v1/work/:id/result     (Bearer session) WorkResult -> { ok: true }
 *   GET  /endpoint/v1/files/:sha256       (Bearer session) a package file, only while a
 *                                            package using it is handed to this agent
 *
 * Errors: JSON `{ error: CODE, message }`. 401 codes the agent acts on:
 * SESSION_EXPIRED (open a new session), REVOKED, UNKNOWN_AGENT,
 * IDENTITY_CHANGED (the key is used on another machine: the agent re-enrols
 * as pending), BAD_SIGNATURE. 503 (+ Retry-After) and network errors are
 * retried with bounded, jittered backoff.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { parseInventory, type Inventory } from './manifest.js';
import { FILE_NAME_PATTERN, NAME_PATTERN, normaliseMac } from './validate.js';

export const ENDPOINT_PREFIX = '/endpoint/v1';

/** The poll interval's jitter: each wait is interval × (1 ± 0.2). */
export const POLL_JITTER = 0.2;
/** Longest output tail kept of each stream of a package run. */
export const OUTPUT_TAIL_BYTES = 8192;

export type AgentState = 'active' | 'pending' | 'revoked';

export class EndpointProtocolError extends Error {
  override name = 'EndpointProtocolError';
}

/** Who the agent says its machine is. */
export interface AgentIdentity {
  /** Lower-case colon MACs of the machine's network interfaces (not loopback, not all-zero), sorted. */
  macs: string[];
  smbiosUuid: string | null;
  smbiosSerial: string | null;
  hostname: string | null;
  /** PRETTY_NAME of /etc/os-release. */
  os: string | null;
  agentVersion: string;
}

export interface Challenge {
  nonce: string;
  expiresInSeconds: number;
}

export interface EnrollRequest {
  /** An enrolment token (`fleetboot agent token create`), or null: the agent waits as pending until approved. */
  token: string | null;
  /** The agent's Ed25519 public key, SPKI DER, base64. */
  publicKey: string;
  nonce: string;
  /** Ed25519 signature of enrollSigningBytes(nonce, publicKey), base64. */
  signature: string;
  identity: AgentIdentity;
}

export interface AgentHostRef {
  mac: string;
  name: string | null;
}

export interface EnrollAnswer {
  agentId: string;
  state: Exclude<AgentState, 'revoked'>;
  host: AgentHostRef | null;
  /** The server's package-signing public key, SPKI DER, base64. */
  packageKey: string;
  pollSeconds: number;
}

export interface SessionRequest {
  agentId: string;
  nonce: string;
  /** Ed25519 signature of sessionSigningBytes(nonce, agentId), base64. */
  signature: string;
  identity: AgentIdentity;
}

export interface SessionAnswer {
  session: string;
  expiresInSeconds: number;
  state: Exclude<AgentState, 'revoked'>;
  host: AgentHostRef | null;
  pollSeconds: number;
  /** Longest `wait` the server holds a work request open. */
  longPollSeconds: number;
  /** The package key (the same as at enrolment unless the server's was replaced). */
  packageKey: string;
}

export interface PackageFile {
  /** A plain file name (no directories), written into the run's working directory. */
  name: string;
  sha256: string;
  size: number;
  executable: boolean;
}

/** What the server signs for a package; the agent refuses anything else. */
export interface PackageManifest {
  format: 'fleetboot-package';
  version: 1;
  name: string;
  revision: number;
  files: PackageFile[];
  /** The command as an argument array (no shell), run in the directory holding the files. */
  argv: string[];
  timeoutSeconds: number;
  /** Exit codes that mean "done, reboot needed" (e.g. 3010, 1641). */
  rebootCodes: number[];
  /** Exit codes that mean success (default [0]). */
  successCodes: number[];
  createdAt: string;
}

export interface SignedPackage {
  manifest: PackageManifest;
  /** Ed25519 signature of packageSigningBytes(manifest), base64. */
  signature: string;
}

export type WorkItem =
  | { id: number; kind: 'inventory' }
  | { id: number; kind: 'hostname'; name: string }
  | { id: number; kind: 'reboot'; reason: string; taskId: number | null }
  | { id: number; kind: 'package'; package: SignedPackage }
  | { id: number; kind: 'wake'; macs: string[]; port: number; repeats: number };
export type WorkKind = WorkItem['kind'];
export const WORK_KINDS: readonly WorkKind[] = ['inventory', 'hostname', 'reboot', 'package', 'wake'];

export interface WorkAnswer {
  state: Exclude<AgentState, 'revoked'>;
  pollSeconds: number;
  work: WorkItem[];
}

/**
 * How a piece of work ended on the machine:
 * - succeeded / failed: ran (failed: a non-success exit code, a signal, or an error doing it);
 * - hash-mismatch: a package file's sha256 differed from the manifest (nothing ran);
 * - bad-signature: the manifest's signature did not verify (nothing ran);
 * - timeout: killed with its whole process tree after timeoutSeconds;
 * - interrupted: the machine or the agent stopped while it ran (it is not run again);
 * - refused: the agent would not do it (bad input, unsupported on this OS).
 */
export type WorkStatus = 'succeeded' | 'failed' | 'hash-mismatch' | 'bad-signature' | 'timeout' | 'interrupted' | 'refused';
export const WORK_STATUSES: readonly WorkStatus[] = ['succeeded', 'failed', 'hash-mismatch', 'bad-signature', 'timeout', 'interrupted', 'refused'];

export interface WorkResult {
  status: WorkStatus;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** The last OUTPUT_TAIL_BYTES of each stream (UTF-8, a cut character replaced). */
  stdout: string;
  stderr: string;
  /** One line for people: what happened. */
  message: string;
  /** The exit code is one of the package's reboot codes: the agent reboots after reporting. */
  rebootRequested: boolean;
  /** kind 'inventory': the machine's inventory. */
  inventory: Inventory | null;
}

// ---------------------------------------------------------------- signatures

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The agent id of a public key (SPKI DER, base64): the first 32 hex digits of its SHA-256. */
export function agentIdOf(publicKeyB64: string): string {
  return sha256Hex(Buffer.from(publicKeyB64, 'base64')).slice(0, 32);
}

export function enrollSigningBytes(nonce: string, publicKeyB64: string): Buffer {
  return Buffer.from(`fleetboot-enroll-v1\n${nonce}\n${sha256Hex(Buffer.from(publicKeyB64, 'base64'))}`);
}

export function sessionSigningBytes(nonce: string, agentId: string): Buffer {
  return Buffer.from(`fleetboot-session-v1\n${nonce}\n${agentId}`);
}

/** JSON with object keys sorted at every level: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export function packageSigningBytes(m: PackageManifest): Buffer {
  return Buffer.from(`fleetboot-package-v1\n${canonicalJson(m)}`);
}

/** An Ed25519 public key from SPKI DER base64; throws EndpointProtocolError when it is not one. */
export function ed25519PublicKey(b64: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
  } catch (err) {
    throw new EndpointProtocolError(`publicKey must be an Ed25519 public key (SPKI DER, base64): ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new EndpointProtocolError(`publicKey must be an Ed25519 key: it is ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}

/** Whether `signatureB64` is `key`'s Ed25519 signature of `data`. Never throws. */
export function verifySignature(key: KeyObject, data: Buffer, signatureB64: string): boolean {
  try {
    return verify(null, data, key, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- identity

/**
 * Whether `now` is the machine `enrolled` was. Different when both SMBIOS
 * UUIDs are known and differ (a cloned disk in another machine), or when no
 * MAC is in common (a copy of the state directory used elsewhere: network
 * namespaces and VMs with placeholder UUIDs share a UUID but not MACs). A
 * machine whose every NIC was replaced re-enrols as pending: the safe side.
 */
export function sameMachine(enrolled: AgentIdentity, now: AgentIdentity): boolean {
  const u1 = enrolled.smbiosUuid?.trim().toLowerCase() || null;
  const u2 = now.smbiosUuid?.trim().toLowerCase() || null;
  if (u1 !== null && u2 !== null && u1 !== u2) return false;
  // A machine without network interfaces sysfs shows (rare): the UUID alone, when both have one.
  if (enrolled.macs.length === 0 && now.macs.length === 0) return u1 !== null && u1 === u2;
  const macs = new Set(enrolled.macs);
  return now.macs.some((m) => macs.has(m));
}

// ---------------------------------------------------------------- validation

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shown(v: unknown): string {
  return (JSON.stringify(v) ?? 'undefined').slice(0, 80);
}

function text(o: Record<string, unknown>, k: string, where: string, re: RegExp, means: string): string {
  const v = o[k];
  if (typeof v !== 'string' || !re.test(v)) throw new EndpointProtocolError(`${where}.${k} must be ${means}: current value is ${shown(v)}`);
  return v;
}

function optText(o: Record<string, unknown>, k: string, where: string, max: number): string | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.length > max || /[\u0000-\u001f\u007f]/.test(v)) throw new EndpointProtocolError(`${where}.${k} must be a line of at most ${max} characters or null: current value is ${shown(v)}`);
  return v;
}

function int(o: Record<string, unknown>, k: string, where: string, min: number, max: number): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new EndpointProtocolError(`${where}.${k} must be an integer from ${min} to ${max}: current value is ${shown(v)}`);
  return v;
}

function intList(o: Record<string, unknown>, k: string, where: string, min: number, max: number, most: number): number[] {
  const v = o[k];
  if (!Array.isArray(v) || v.length > most || !v.every((x): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= min && x <= max)) {
    throw new EndpointProtocolError(`${where}.${k} must be a list of at most ${most} integers from ${min} to ${max}: current value is ${shown(v)}`);
  }
  return [...v];
}

const B64 = /^[A-Za-z0-9+/]{1,2048}={0,2}$/;
const HEX64 = /^[0-9a-f]{64}$/;
export const AGENT_ID_RE = /^[0-9a-f]{32}$/;
const NONCE_RE = /^[A-Za-z0-9_-]{16,128}$/;
/** A package file name: plain, no directories, not hidden (the rule of boot entry files). */
export const PACKAGE_FILE_RE = new RegExp(FILE_NAME_PATTERN);
/** A package name (the rule of image and entry names). */
export const PACKAGE_NAME_RE = new RegExp(NAME_PATTERN);
/** A host name the agent may set: an RFC 1123 label sequence, at most 63 characters. */
export const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** An enrolment token's secret as the server makes it (24 random bytes, base64url) and the agent accepts it. */
export const ENROL_TOKEN_RE = /^[A-Za-z0-9_-]{16,128}$/;
/** A CA certificate's SHA-256 (of its DER), lower-case hex. */
export const CA_SHA256_RE = /^[0-9a-f]{64}$/;
/** The server as an enrol.json names it: https://HOST:PORT, HOST an IPv4 address or a DNS name; nothing else. */
const ENROL_SERVER_RE = /^https:\/\/((?:[0-9]{1,3}\.){3}[0-9]{1,3}|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*):([1-9][0-9]{0,4})$/;

/**
 * What the endpoint agent enrols with on its own (<state>/enrol.json):
 * written by a deploy with `enrol` (src/agent/enrol.ts) from the server's
 * TaskSpec, which reaches the boot environment over plain HTTP; so every
 * field is checked against a strict form before it is written anywhere.
 */
export interface EnrolSpec {
  /** https://HOST:PORT of the server's HTTPS (the endpoint agents' endpoints). */
  server: string;
  /** SHA-256 of the CA certificate the agent pins (64 lower-case hex digits). */
  caSha256: string;
  /** A one-use enrolment token for the machine's host. */
  token: string;
}

/** Check an EnrolSpec (as received: unknown); EndpointProtocolError says which field is wrong. */
export function parseEnrolSpec(input: unknown, where = 'enrol'): EnrolSpec {
  if (!isObj(input)) throw new EndpointProtocolError(`${where} must be a JSON object { server, caSha256, token }: current value is ${shown(input)}`);
  for (const k of Object.keys(input)) if (k !== 'server' && k !== 'caSha256' && k !== 'token') throw new EndpointProtocolError(`${where} has an unknown field ${shown(k)} (known: server, caSha256, token)`);
  const server = text(input, 'server', where, ENROL_SERVER_RE, 'https://HOST:PORT (an IPv4 address or a DNS name, a port; no path)');
  const m = ENROL_SERVER_RE.exec(server);
  const host = m?.[1] ?? '';
  const port = Number(m?.[2]);
  const badIpv4 = /^[0-9.]+$/.test(host) && host.split('.').some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0')));
  if (port > 65535 || host.length > 253 || badIpv4) throw new EndpointProtocolError(`${where}.server must be https://HOST:PORT with a valid address and a port up to 65535: current value is ${shown(server)}`);
  const caSha256 = text(input, 'caSha256', where, CA_SHA256_RE, 'a SHA-256 fingerprint (64 lower-case hex digits)');
  const token = text(input, 'token', where, ENROL_TOKEN_RE, 'an enrolment token (16 to 128 letters, digits, _ or -)');
  return { server, caSha256, token };
}

export function parseAgentIdentity(input: unknown, where = 'identity'): AgentIdentity {
  if (!isObj(input)) throw new EndpointProtocolError(`${where} must be a JSON object: current value is ${shown(input)}`);
  const macsRaw = input['macs'];
  if (!Array.isArray(macsRaw) || macsRaw.length > 64) throw new EndpointProtocolError(`${where}.macs must be a list of at most 64 MAC addresses: current value is ${shown(macsRaw)}`);
  const macs = macsRaw.map((m, i) => {
    const n = typeof m === 'string' ? normaliseMac(m) : null;
    if (n === null || n === '00:00:00:00:00:00') throw new EndpointProtocolError(`${where}.macs[${i}] must be a MAC address: current value is ${shown(m)}`);
    return n;
  });
  return {
    macs: [...new Set(macs)].sort(),
    smbiosUuid: optText(input, 'smbiosUuid', where, 64),
    smbiosSerial: optText(input, 'smbiosSerial', where, 256),
    hostname: optText(input, 'hostname', where, 253),
    os: optText(input, 'os', where, 256),
    agentVersion: text(input, 'agentVersion', where, /^[A-Za-z0-9._+-]{1,64}$/, 'a version such as 0.1.0'),
  };
}

export function parseEnrollRequest(input: unknown): EnrollRequest {
  if (!isObj(input)) throw new EndpointProtocolError(`the enrolment request must be a JSON object: current value is ${shown(input)}`);
  const token = input['token'];
  if (token !== null && (typeof token !== 'string' || !/^[A-Za-z0-9_-]{16,128}$/.test(token))) throw new EndpointProtocolError(`token must be an enrolment token or null: current value is ${shown(token)}`);
  return {
    token: token === null ? null : token,
    publicKey: text(input, 'publicKey', 'enroll', B64, 'an SPKI public key in base64'),
    nonce: text(input, 'nonce', 'enroll', NONCE_RE, 'the nonce of a challenge'),
    signature: text(input, 'signature', 'enroll', B64, 'a signature in base64'),
    identity: parseAgentIdentity(input['identity']),
  };
}

export function parseSessionRequest(input: unknown): SessionRequest {
  if (!isObj(input)) throw new EndpointProtocolError(`the session request must be a JSON object: current value is ${shown(input)}`);
  return {
    agentId: text(input, 'agentId', 'session', AGENT_ID_RE, '32 hex digits'),
    nonce: text(input, 'nonce', 'session', NONCE_RE, 'the nonce of a challenge'),
    signature: text(input, 'signature', 'session', B64, 'a signature in base64'),
    identity: parseAgentIdentity(input['identity']),
  };
}

export function parsePackageManifest(input: unknown): PackageManifest {
  const w = 'package';
  if (!isObj(input)) throw new EndpointProtocolError(`the package manifest must be a JSON object: current value is ${shown(input)}`);
  if (input['format'] !== 'fleetboot-package' || input['version'] !== 1) throw new EndpointProtocolError(`the package manifest must have format "fleetboot-package", version 1: it has ${shown(input['format'])}, ${shown(input['version'])}`);
  const files = input['files'];
  if (!Array.isArray(files) || files.length === 0 || files.length > 256) throw new EndpointProtocolError(`package.files must be a list of 1 to 256 files: current value is ${shown(files)}`);
  const parsed = files.map((f, i): PackageFile => {
    const fw = `package.files[${i}]`;
    if (!isObj(f)) throw new EndpointProtocolError(`${fw} must be an object: current value is ${shown(f)}`);
    if (typeof f['executable'] !== 'boolean') throw new EndpointProtocolError(`${fw}.executable must be true or false: current value is ${shown(f['executable'])}`);
    return { name: text(f, 'name', fw, PACKAGE_FILE_RE, 'a plain file name'), sha256: text(f, 'sha256', fw, HEX64, '64 lower-case hex digits'), size: int(f, 'size', fw, 0, Number.MAX_SAFE_INTEGER), executable: f['executable'] };
  });
  if (new Set(parsed.map((f) => f.name)).size !== parsed.length) throw new EndpointProtocolError('package.files names a file twice');
  const argv = input['argv'];
  if (!Array.isArray(argv) || argv.length === 0 || argv.length > 256 || !argv.every((a): a is string => typeof a === 'string' && a.length <= 4096 && !a.includes('\u0000'))) {
    throw new EndpointProtocolError(`package.argv must be a list of 1 to 256 arguments without NUL: current value is ${shown(argv)}`);
  }
  if (argv[0] === '') throw new EndpointProtocolError('package.argv[0] (the program) must not be empty');
  const createdAt = input['createdAt'];
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) throw new EndpointProtocolError(`package.createdAt must be an ISO-8601 time: current value is ${shown(createdAt)}`);
  return {
    format: 'fleetboot-package',
    version: 1,
    name: text(input, 'name', w, PACKAGE_NAME_RE, 'a package name'),
    revision: int(input, 'revision', w, 1, 1_000_000_000),
    files: parsed,
    argv: [...argv],
    timeoutSeconds: int(input, 'timeoutSeconds', w, 1, 7 * 24 * 3600),
    rebootCodes: intList(input, 'rebootCodes', w, -2147483648, 4294967295, 32),
    successCodes: intList(input, 'successCodes', w, -2147483648, 4294967295, 32),
    createdAt,
  };
}

export function parseWorkItem(input: unknown, where = 'work'): WorkItem {
  if (!isObj(input)) throw new EndpointProtocolError(`${where} must be a JSON object: current value is ${shown(input)}`);
  const id = int(input, 'id', where, 1, Number.MAX_SAFE_INTEGER);
  switch (input['kind']) {
    case 'inventory':
      return { id, kind: 'inventory' };
    case 'hostname':
      return { id, kind: 'hostname', name: text(input, 'name', where, HOSTNAME_RE, 'a host name (letters, digits, hyphens; at most 63)') };
    case 'reboot': {
      const t = input['taskId'];
      return { id, kind: 'reboot', reason: optText(input, 'reason', where, 256) ?? 'asked by the server', taskId: t === null || t === undefined ? null : int(input, 'taskId', where, 1, Number.MAX_SAFE_INTEGER) };
    }
    case 'package': {
      const p = input['package'];
      if (!isObj(p)) throw new EndpointProtocolError(`${where}.package must be an object: current value is ${shown(p)}`);
      return { id, kind: 'package', package: { manifest: parsePackageManifest(p['manifest']), signature: text(p, 'signature', `${where}.package`, B64, 'a signature in base64') } };
    }
    case 'wake': {
      const macs = input['macs'];
      if (!Array.isArray(macs) || macs.length === 0 || macs.length > 1000) throw new EndpointProtocolError(`${where}.macs must be a list of 1 to 1000 MACs: current value is ${shown(macs)}`);
      return {
        id,
        kind: 'wake',
        macs: macs.map((m, i) => {
          const n = typeof m === 'string' ? normaliseMac(m) : null;
          if (n === null) throw new EndpointProtocolError(`${where}.macs[${i}] must be a MAC address: current value is ${shown(m)}`);
          return n;
        }),
        port: int(input, 'port', where, 1, 65535),
        repeats: int(input, 'repeats', where, 1, 10),
      };
    }
    default:
      throw new EndpointProtocolError(`${where}.kind must be one of ${WORK_KINDS.join(', ')}: current value is ${shown(input['kind'])}`);
  }
}

export function parseWorkResult(input: unknown): WorkResult {
  const w = 'result';
  if (!isObj(input)) throw new EndpointProtocolError(`the work result must be a JSON object: current value is ${shown(input)}`);
  const status = input['status'];
  if (typeof status !== 'string' || !(WORK_STATUSES as readonly string[]).includes(status)) throw new EndpointProtocolError(`result.status must be one of ${WORK_STATUSES.join(', ')}: current value is ${shown(status)}`);
  const exit = input['exitCode'];
  const signal = input['signal'];
  if (signal !== null && (typeof signal !== 'string' || !/^SIG[A-Z0-9]{1,12}$/.test(signal))) throw new EndpointProtocolError(`result.signal must be a signal name such as SIGKILL or null: current value is ${shown(signal)}`);
  const tail = (k: 'stdout' | 'stderr'): string => {
    const v = input[k];
    if (typeof v !== 'string' || Buffer.byteLength(v) > OUTPUT_TAIL_BYTES * 4) throw new EndpointProtocolError(`result.${k} must be text of at most ${OUTPUT_TAIL_BYTES} bytes: current value is ${shown(typeof v === 'string' ? `${v.length} characters` : v)}`);
    return v;
  };
  const message = input['message'];
  if (typeof message !== 'string' || message.length > 2000) throw new EndpointProtocolError(`result.message must be text of at most 2000 characters: current value is ${shown(message)}`);
  const inv = input['inventory'];
  let inventory: Inventory | null = null;
  if (inv !== null && inv !== undefined) {
    try {
      inventory = parseInventory(inv);
    } catch (err) {
      throw new EndpointProtocolError(`result.${(err as Error).message}`);
    }
  }
  if (typeof input['rebootRequested'] !== 'boolean') throw new EndpointProtocolError(`result.rebootRequested must be true or false: current value is ${shown(input['rebootRequested'])}`);
  return {
    status: status as WorkStatus,
    exitCode: exit === null ? null : int(input, 'exitCode', w, -2147483648, 4294967295),
    signal: signal === null ? null : signal,
    durationMs: int(input, 'durationMs', w, 0, Number.MAX_SAFE_INTEGER),
    stdout: tail('stdout'),
    stderr: tail('stderr'),
    message,
    rebootRequested: input['rebootRequested'],
    inventory,
  };
}
