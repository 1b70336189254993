/**
 * Validators of what the agent receives from the server (src/model/endpoint.ts
 * has the request validators the server uses; these are their mirror on the
 * agent side). Each throws EndpointProtocolError saying what was expected
 * and what was seen.
 */
import {
  AGENT_ID_RE,
  EndpointProtocolError,
  ed25519PublicKey,
  parseWorkItem,
  type AgentHostRef,
  type AgentState,
  type Challenge,
  type EnrollAnswer,
  type SessionAnswer,
  type WorkItem,
} from '../model/endpoint.js';

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shown(v: unknown): string {
  return (JSON.stringify(v) ?? 'undefined').slice(0, 80);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (!isObj(v)) throw new EndpointProtocolError(`${what} must be a JSON object: current value is ${shown(v)}`);
  return v;
}

function int(o: Record<string, unknown>, k: string, where: string, min: number, max: number): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new EndpointProtocolError(`${where}.${k} must be an integer from ${min} to ${max}: current value is ${shown(v)}`);
  return v;
}

function str(o: Record<string, unknown>, k: string, where: string, re: RegExp, means: string): string {
  const v = o[k];
  if (typeof v !== 'string' || !re.test(v)) throw new EndpointProtocolError(`${where}.${k} must be ${means}: current value is ${shown(v)}`);
  return v;
}

function state(o: Record<string, unknown>, where: string): Exclude<AgentState, 'revoked'> {
  const v = o['state'];
  if (v !== 'active' && v !== 'pending') throw new EndpointProtocolError(`${where}.state must be "active" or "pending": current value is ${shown(v)}`);
  return v;
}

function host(o: Record<string, unknown>, where: string): AgentHostRef | null {
  const v = o['host'];
  if (v === null || v === undefined) return null;
  const h = obj(v, `${where}.host`);
  const name = h['name'];
  if (name !== null && name !== undefined && typeof name !== 'string') throw new EndpointProtocolError(`${where}.host.name must be text or null: current value is ${shown(name)}`);
  return { mac: str(h, 'mac', `${where}.host`, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'a MAC address'), name: typeof name === 'string' ? name : null };
}

function packageKey(o: Record<string, unknown>, where: string): string {
  const k = str(o, 'packageKey', where, /^[A-Za-z0-9+/]{1,2048}={0,2}$/, 'an SPKI public key in base64');
  ed25519PublicKey(k); // throws when it is not an Ed25519 key
  return k;
}

export function parseChallenge(input: unknown): Challenge {
  const o = obj(input, 'the challenge');
  return { nonce: str(o, 'nonce', 'challenge', /^[A-Za-z0-9_-]{16,128}$/, 'a nonce'), expiresInSeconds: int(o, 'expiresInSeconds', 'challenge', 1, 3600) };
}

export function parseEnrollAnswer(input: unknown): EnrollAnswer {
  const o = obj(input, 'the enrolment answer');
  const w = 'enroll';
  return { agentId: str(o, 'agentId', w, AGENT_ID_RE, '32 hex digits'), state: state(o, w), host: host(o, w), packageKey: packageKey(o, w), pollSeconds: int(o, 'pollSeconds', w, 1, 86_400) };
}

export function parseSessionAnswer(input: unknown): SessionAnswer {
  const o = obj(input, 'the session answer');
  const w = 'session';
  return {
    session: str(o, 'session', w, /^[\x21-\x7e]{16,1024}$/, 'a session token'),
    expiresInSeconds: int(o, 'expiresInSeconds', w, 1, 86_400),
    state: state(o, w),
    host: host(o, w),
    pollSeconds: int(o, 'pollSeconds', w, 1, 86_400),
    longPollSeconds: int(o, 'longPollSeconds', w, 0, 3600),
    packageKey: packageKey(o, w),
  };
}

/** A work item the agent could not read but can name: it reports it as refused. */
export interface UnreadableWork {
  id: number;
  message: string;
}

export interface ParsedWorkAnswer {
  state: Exclude<AgentState, 'revoked'>;
  pollSeconds: number;
  work: WorkItem[];
  unreadable: UnreadableWork[];
}

/**
 * The answer to a poll. An item that does not validate but has an id is
 * returned in `unreadable` (the agent reports it refused); one without an
 * id cannot be answered and is dropped (its message is in `dropped`).
 */
export function parseWorkAnswer(input: unknown): ParsedWorkAnswer & { dropped: string[] } {
  const o = obj(input, 'the work answer');
  const w = 'work answer';
  const list = o['work'];
  if (!Array.isArray(list) || list.length > 1000) throw new EndpointProtocolError(`${w}.work must be a list of at most 1000 items: current value is ${shown(list)}`);
  const work: WorkItem[] = [];
  const unreadable: UnreadableWork[] = [];
  const dropped: string[] = [];
  list.forEach((item: unknown, i) => {
    try {
      work.push(parseWorkItem(item, `work[${i}]`));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const id = isObj(item) ? item['id'] : undefined;
      if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 1) unreadable.push({ id, message });
      else dropped.push(message);
    }
  });
  return { state: state(o, w), pollSeconds: int(o, 'pollSeconds', w, 1, 86_400), work, unreadable, dropped };
}

/** The `{ error, message }` of an error answer, when it has that shape. */
export function parseErrorBody(input: unknown): { error: string; message: string } | null {
  if (!isObj(input) || typeof input['error'] !== 'string') return null;
  return { error: input['error'], message: typeof input['message'] === 'string' ? input['message'] : '' };
}
