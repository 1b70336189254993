/**
 * For the API tests: what an /api/v1 answer lost to its response schema.
 * Fastify writes answers through their schemas, which drop every property
 * they do not declare, silently (and tsc does not see a handler return more
 * than its schema). `watchAnswers(app)`, called before ready(), compares
 * each JSON answer as the handler made it with what was sent and records
 * every property lost on the way, unless HIDDEN names it; the suite's
 * after() checks `lost` is empty. So any API test that reaches a route
 * checks that route's schema against its real answers.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * What the API deliberately does not show, as "METHOD /route/pattern path"
 * (path: `tasks[].identity`; empty for the answer itself).
 */
export const HIDDEN: readonly RegExp[] = [
  // A task's hardware identity report (the inventory of record is shown) and its multicast receiver id.
  /(^| |\.)(identity|multicastReceiver)$/,
  // A session's or token's owner by internal id (the owner's name is shown).
  /(^| |\.)userId$/,
  // A multicast member's receiver id.
  / members\[\]\.receiver$/,
  // Users are named, not numbered.
  /^\S+ \/api\/v1\/users\S* (users\[\]\.|user\.|deleted\.)?id$/,
];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The paths of `made` that `sent` lacks. */
export function lostPaths(made: unknown, sent: unknown, at = ''): string[] {
  const out: string[] = [];
  if (Array.isArray(made) && Array.isArray(sent)) {
    for (let i = 0; i < Math.min(made.length, sent.length); i++) out.push(...lostPaths(made[i], sent[i], `${at}[]`));
  } else if (isObject(made) && isObject(sent)) {
    for (const [k, v] of Object.entries(made)) {
      const path = at === '' ? k : `${at}.${k}`;
      if (!(k in sent)) out.push(path);
      else out.push(...lostPaths(v, sent[k], path));
    }
  }
  return [...new Set(out)];
}

export interface AnswerWatch {
  /** "METHOD /route/pattern path" of each property an answer lost (HIDDEN aside). */
  readonly lost: string[];
}

export function watchAnswers(app: FastifyInstance): AnswerWatch {
  const made = new WeakMap<FastifyRequest, unknown>();
  const lost = new Set<string>();
  const watch: AnswerWatch = {
    get lost() {
      return [...lost].sort();
    },
  };
  app.addHook('preSerialization', async (req, _reply, payload) => {
    // As JSON would have it (undefined dropped, dates as strings).
    if (req.url.startsWith('/api/v1/')) made.set(req, JSON.parse(JSON.stringify(payload ?? null)) as unknown);
    return payload;
  });
  app.addHook('onSend', async (req, _reply, payload) => {
    const before = made.get(req);
    if (before === undefined || typeof payload !== 'string') return payload;
    let sent: unknown;
    try {
      sent = JSON.parse(payload);
    } catch {
      return payload;
    }
    for (const p of lostPaths(before, sent)) {
      const key = `${req.method} ${req.routeOptions.url ?? req.url} ${p}`;
      if (!HIDDEN.some((r) => r.test(key))) lost.add(key);
    }
    return payload;
  });
  return watch;
}
