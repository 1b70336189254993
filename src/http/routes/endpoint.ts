/**
 * The endpoint agents' protocol, /endpoint/v1 (src/model/endpoint.ts has
 * the routes and the trust model; src/endpoints/service.ts the rules).
 *
 * Served over HTTPS only: a request that came over plain HTTP is refused
 * (403 HTTPS_REQUIRED) before anything is read, except GET /ca, which
 * hands out the CA certificate (public; the agent checks its fingerprint
 * against the one it was given). Bodies are small JSON (64 KiB, results
 * 256 KiB). 401 answers carry the code the agent acts on. Challenges,
 * enrolments and sessions are limited per client address (429 with
 * Retry-After, which the agent honours).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createReadStream } from 'node:fs';
import { FleetbootError } from '../../lib/errors.js';
import { ENDPOINT_PREFIX, EndpointProtocolError, parseEnrollRequest, parseSessionRequest, parseWorkResult } from '../../model/endpoint.js';
import { AgentAuthError, type EndpointService } from '../../endpoints/service.js';
import type { Agent } from '../../store/agents.js';
import type { AppContext } from '../context.js';
import { clientAddress } from '../client-address.js';
import { overTls } from '../auth.js';
import { RateLimiter } from '../../lib/rate-limit.js';

export { ENDPOINT_PREFIX };

export interface EndpointRouteOptions {
  service: EndpointService;
  /** PEM of the CA agents pin (null: HTTPS is off, /ca answers 404). */
  caPem: () => string | null;
  /** Tests with app.inject (no TLS): let plain HTTP in. Never set by the server. */
  allowPlainHttp?: boolean;
}

function problem(err: unknown): never {
  if (err instanceof EndpointProtocolError) throw new FleetbootError('INVALID_INPUT', err.message);
  throw err;
}

export async function endpointRoutes(app: FastifyInstance, _ctx: AppContext, opts: EndpointRouteOptions): Promise<void> {
  const { service } = opts;
  const agents = new WeakMap<FastifyRequest, Agent>();
  const open = new Set(['/challenge', '/enroll', '/session', '/ca']);
  // What anyone may ask before proving a key, per client address: generous for many machines
  // behind one NAT (each opens a session every agents.sessionMinutes), tight for a flood of
  // pending enrolments or of open nonces.
  const unauthenticated = new RateLimiter({ burst: 60, perMinute: 120 });

  app.setErrorHandler(async (err, req, reply) => {
    if (err instanceof AgentAuthError) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="fleetboot-endpoint"').send({ error: err.code, message: err.message });
    }
    if (err instanceof FleetbootError) return reply.code(err.status).send({ error: err.code, message: err.status >= 500 ? 'Internal server error' : err.message });
    const status = typeof (err as { statusCode?: unknown }).statusCode === 'number' ? (err as { statusCode: number }).statusCode : 500;
    if (status >= 500) req.log.error({ err, url: req.url }, 'endpoint request failed');
    return reply.code(status).send({ error: status >= 500 ? 'INTERNAL' : 'INVALID_INPUT', message: status >= 500 ? 'Internal server error' : (err as Error).message });
  });

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const path = (req.url.split('?')[0] ?? '').slice(ENDPOINT_PREFIX.length);
    if (!overTls(req) && !opts.allowPlainHttp && path !== '/ca') {
      await reply.code(403).send({ error: 'HTTPS_REQUIRED', message: 'The agent protocol is served over HTTPS only (`fleetboot ports` shows the port): plain HTTP carries no server authentication' });
      return;
    }
    if (open.has(path)) {
      if (path === '/ca') return;
      const r = unauthenticated.take(clientAddress(req.ip));
      if (!r.allowed) {
        await reply.code(429).header('retry-after', String(r.retryAfterSeconds)).send({ error: 'RATE_LIMITED', message: `Too many enrolment and session requests from ${clientAddress(req.ip)}: try again in ${r.retryAfterSeconds} s` });
      }
      return;
    }
    const auth = req.headers.authorization;
    const m = auth === undefined ? null : /^Bearer ([A-Za-z0-9_-]{20,128})$/.exec(auth);
    if (!m?.[1]) throw new AgentAuthError('UNAUTHORIZED', 'Send the session as Authorization: Bearer SESSION (POST /endpoint/v1/session)');
    agents.set(req, await service.authenticate(m[1], clientAddress(req.ip)));
  });

  const agentOf = (req: FastifyRequest): Agent => {
    const a = agents.get(req);
    if (!a) throw new AgentAuthError('UNAUTHORIZED', 'No session for this request');
    return a;
  };

  app.get('/ca', async (_req, reply) => {
    const pem = opts.caPem();
    if (pem === null) throw new FleetbootError('NOT_FOUND', 'HTTPS is off on this server: there is no CA for agents');
    return reply.type('application/x-pem-file').send(pem);
  });

  app.post('/challenge', { bodyLimit: 1024 }, async () => service.challenge());

  app.post('/enroll', { bodyLimit: 64 * 1024 }, async (req) => {
    let body;
    try {
      body = parseEnrollRequest(req.body);
    } catch (err) {
      problem(err);
    }
    return service.enroll(body, clientAddress(req.ip));
  });

  app.post('/session', { bodyLimit: 64 * 1024 }, async (req) => {
    let body;
    try {
      body = parseSessionRequest(req.body);
    } catch (err) {
      problem(err);
    }
    return service.openSession(body, clientAddress(req.ip));
  });

  app.get('/work', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const wait = typeof q['wait'] === 'string' && /^[0-9]{1,4}$/.test(q['wait']) ? Number(q['wait']) : 0;
    const running = typeof q['running'] === 'string' ? q['running'] : '';
    if (!/^([1-9][0-9]{0,15}(,[1-9][0-9]{0,15}){0,99})?$/.test(running)) throw new FleetbootError('INVALID_INPUT', `running must be work ids separated by commas (at most 100): got ${JSON.stringify(running.slice(0, 80))}`);
    const held = new Set(running === '' ? [] : running.split(',').map(Number));
    const ac = new AbortController();
    // The connection closed before the answer (the agent gave up): stop waiting. (The
    // request's own 'close' comes once a GET is read, so the response's is the one.)
    const stop = (): void => ac.abort();
    reply.raw.once('close', stop);
    try {
      return await service.poll(agentOf(req), { waitSeconds: wait, held, signal: ac.signal });
    } finally {
      reply.raw.off('close', stop);
    }
  });

  app.post('/work/:id/result', { bodyLimit: 256 * 1024 }, async (req) => {
    const id = Number((req.params as { id: string }).id);
    if (!Number.isSafeInteger(id) || id < 1) throw new FleetbootError('INVALID_INPUT', `Expected a work id: got ${JSON.stringify((req.params as { id: string }).id)}`);
    let result;
    try {
      result = parseWorkResult(req.body);
    } catch (err) {
      problem(err);
    }
    await service.report(agentOf(req), id, result);
    return { ok: true };
  });

  app.get('/files/:sha256', async (req, reply) => {
    const { path, size } = await service.fileFor(agentOf(req), (req.params as { sha256: string }).sha256);
    return reply.type('application/octet-stream').header('content-length', size).send(createReadStream(path));
  });
}
