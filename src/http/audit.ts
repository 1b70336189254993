/**
 * The audit log's writer: every /api/v1 request that may change something
 * (any method but GET, HEAD and OPTIONS), whatever its answer (refusals,
 * failed logins and 404s too), becomes one row of audit_log: when, who,
 * from where, method, route pattern and URL, status, and a summary of what
 * was asked. It runs in onSend, so the row is committed before the client
 * has its answer. A failure to write it is logged, and the answer goes out
 * (the change, if any, is already made).
 *
 * The summary is the route's params, query string and JSON body, with the
 * value of every key that names a secret (password, token, secret, csrf,
 * cookie, authorization) replaced by "[removed]"; a summary longer than
 * MAX_SUMMARY characters is cut (as text). Uploaded files are not in it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { appendAudit, type Store } from '../store/index.js';
import { isApiUrl, isWrite } from './auth.js';
import { clientAddress } from './client-address.js';

export const MAX_SUMMARY = 4000;
const SECRET_KEY = /pass(word|phrase)?|token|secret|csrf|cookie|authori[sz]ation/i;
export const REMOVED = '[removed]';

/** An object literal or JSON.parse result, or a null-prototype one (the router's params); not a stream, Buffer or class instance. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null || (typeof proto === 'object' && Object.getPrototypeOf(proto) === null);
}

/** A copy of a JSON value with the values of secret-naming keys replaced (nested objects and arrays too). */
export function withoutSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[nested too deep]';
  if (Array.isArray(value)) return value.map((v) => withoutSecrets(v, depth + 1));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? REMOVED : withoutSecrets(v, depth + 1);
    return out;
  }
  return value;
}

/** What a request asked, for the audit log: params, query, JSON body (parts that are empty are left out), without secrets. */
export function requestSummary(req: FastifyRequest): unknown {
  const parts: Record<string, unknown> = {};
  for (const [key, value] of [
    ['params', req.params],
    ['query', req.query],
    ['body', req.body],
  ] as const) {
    if (isPlainObject(value) ? Object.keys(value).length > 0 : Array.isArray(value)) parts[key] = withoutSecrets(value);
  }
  if (Object.keys(parts).length === 0) return null;
  const text = JSON.stringify(parts);
  return text.length <= MAX_SUMMARY ? parts : { truncated: true, text: text.slice(0, MAX_SUMMARY) };
}

/** Who the audit log names: the login's name tried, else the principal, else "anonymous". */
export function actorOf(req: FastifyRequest): string {
  return req.auditActor ?? req.principal?.actor ?? 'anonymous';
}

export function installAuditLog(app: FastifyInstance, store: Store, log: Logger, now: () => Date): void {
  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (!isWrite(req.method) || !isApiUrl(req.url.split('?')[0] ?? '')) return payload;
    const entry = {
      at: now().toISOString(),
      actor: actorOf(req),
      ip: clientAddress(req.ip),
      method: req.method,
      route: req.routeOptions.url ?? null,
      url: req.url,
      status: reply.statusCode,
      summary: requestSummary(req),
    };
    try {
      await appendAudit(store.db, entry);
    } catch (err) {
      log.error({ subsystem: 'audit', err: errorMessage(err), method: entry.method, url: entry.url, status: entry.status, actor: entry.actor }, 'writing the audit log failed');
    }
    return payload;
  });
}
