/**
 * Endpoint agents and software packages (roles: reads viewer, work and
 * packages operator, enrolment and revocation admin):
 *   GET    /api/v1/agents?state=&mac=           -> { agents }
 *   GET    /api/v1/agents/:id                   (id or MAC) -> the agent
 *   POST   /api/v1/agents/:id/approve { host? } -> the agent, active
 *   POST   /api/v1/agents/:id/revoke            (id or MAC) -> the agent, revoked
 *   GET    /api/v1/agents/tokens                -> { tokens }
 *   POST   /api/v1/agents/tokens { host?, group?, ttlSeconds?, uses? } -> 201 { token, info }
 *   DELETE /api/v1/agents/tokens/:id            -> the token, revoked
 *   POST   /api/v1/agents/work { kind, macs? | group? } -> 201 { work }
 *   POST   /api/v1/agents/wake { via, macs, port? } -> 201 the work
 *   GET    /api/v1/agents/work?mac=&kind=&limit= -> { work }
 *   GET    /api/v1/agents/work/:id              -> the work
 *   PUT    /api/v1/packages/files/:sha256       octet-stream -> { sha256, size, existed }
 *   POST   /api/v1/packages { name, files, argv, timeoutSeconds?, rebootCodes?, successCodes? } -> 201
 *   GET    /api/v1/packages, /api/v1/packages/:name?revision=
 *   POST   /api/v1/packages/:name/deploy { macs? | group?, at? } -> 201 { work }
 * The rules are src/endpoints/service.ts's.
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import type { EndpointService } from '../../endpoints/service.js';
import type { StoredPackage, Work, Agent as StoredAgent } from '../../store/agents.js';
import { groupMacs } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { actorOf } from '../audit.js';
import { agentsApi, packagesApi, type Agent, type AgentWork, type Package } from '../schemas/index.js';
import type { ApiTypeProvider } from '../type-provider.js';

/** Default lifetime of an enrolment token. */
const TOKEN_TTL_SECONDS = 24 * 3600;

export function agentView(a: StoredAgent): Agent {
  return {
    id: a.id,
    state: a.state,
    host: a.host ? { mac: a.host.mac, name: a.host.name } : null,
    identity: a.identity,
    lastIdentity: a.lastIdentity,
    lastIp: a.lastIp,
    enrolledAt: a.enrolledAt,
    approvedAt: a.approvedAt,
    revokedAt: a.revokedAt,
    lastSeenAt: a.lastSeenAt,
  };
}

export function workView(w: Work): AgentWork {
  const kind = w.kind === 'inventory' || w.kind === 'hostname' || w.kind === 'reboot' || w.kind === 'package' || w.kind === 'wake' ? w.kind : 'inventory';
  return {
    id: w.id,
    mac: w.mac,
    hostName: w.hostName,
    kind,
    package: w.packageName !== null && w.packageRevision !== null ? { name: w.packageName, revision: w.packageRevision } : null,
    taskId: w.taskId,
    state: w.state,
    notBefore: w.notBefore,
    createdAt: w.createdAt,
    createdBy: w.createdBy,
    agentId: w.agentId,
    deliveries: w.deliveries,
    sentAt: w.sentAt,
    finishedAt: w.finishedAt,
    exitCode: w.exitCode,
    signal: w.signal,
    durationMs: w.durationMs,
    stdout: w.stdout,
    stderr: w.stderr,
    message: w.message,
    rebootRequested: w.rebootRequested,
  };
}

export function packageView(p: StoredPackage): Package {
  const m = p.manifest;
  return { name: p.name, revision: p.revision, files: m.files, argv: m.argv, timeoutSeconds: m.timeoutSeconds, rebootCodes: m.rebootCodes, successCodes: m.successCodes, createdAt: p.createdAt, createdBy: p.createdBy };
}

export async function agentRoutesApi(fastify: FastifyInstance, ctx: AppContext, service: EndpointService): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();

  /** MACs named, or a group's members (exactly one of them). */
  const targetMacs = async (b: { macs?: string[]; group?: string }): Promise<string[]> => {
    if ((b.macs === undefined) === (b.group === undefined)) throw new FleetbootError('INVALID_INPUT', `Name the machines: "macs" (a list of MACs) or "group" (a host group), not ${b.macs === undefined ? 'neither' : 'both'}`);
    if (b.macs !== undefined) return b.macs;
    const macs = await groupMacs(ctx.store.db, b.group as string);
    if (macs.length === 0) throw new FleetbootError('CONFLICT', `Group '${b.group as string}' has no members`);
    return macs;
  };

  app.get('/agents', { config: { role: 'viewer' }, schema: agentsApi.list }, async (req) => {
    const { state, mac } = req.query;
    let m: string | undefined;
    if (mac !== undefined) m = (await service.findAgent(mac).catch(() => null))?.host?.mac ?? mac.toLowerCase();
    return { agents: (await service.listAgents({ ...(state !== undefined ? { state } : {}), ...(m !== undefined ? { mac: m } : {}) })).map(agentView) };
  });

  app.get('/agents/tokens', { config: { role: 'admin' }, schema: agentsApi.tokens }, async () => ({ tokens: await service.listTokens() }));

  app.post('/agents/tokens', { config: { role: 'admin' }, schema: agentsApi.createToken }, async (req, reply) => {
    const b = req.body;
    if (b.host !== undefined && b.group !== undefined) throw new FleetbootError('INVALID_INPUT', 'A token is for one host or for a group, not both');
    const made = await service.createToken({ host: b.host ?? null, group: b.group ?? null, ttlSeconds: b.ttlSeconds ?? TOKEN_TTL_SECONDS, uses: b.uses ?? 1, createdBy: actorOf(req) });
    return reply.code(201).send(made);
  });

  app.delete('/agents/tokens/:id', { config: { role: 'admin' }, schema: agentsApi.revokeToken }, async (req) => {
    const id = Number(req.params.id);
    await service.revokeToken(id);
    const t = (await service.listTokens()).find((x) => x.id === id);
    if (!t) throw new FleetbootError('NOT_FOUND', `No enrolment token #${id}`);
    return t;
  });

  app.post('/agents/work', { config: { role: 'operator' }, schema: agentsApi.queue }, async (req, reply) => {
    const macs = await targetMacs(req.body);
    const work = await service.queue(macs, req.body.kind, actorOf(req));
    return reply.code(201).send({ work: work.map(workView) });
  });

  app.post('/agents/wake', { config: { role: 'operator' }, schema: agentsApi.wake }, async (req, reply) => {
    const w = await service.wakeVia(req.body.via, req.body.macs, req.body.port ?? ctx.config.wake.port, actorOf(req));
    return reply.code(201).send(workView(w));
  });

  app.get('/agents/work', { config: { role: 'viewer' }, schema: agentsApi.work }, async (req) => {
    const { mac, kind, limit } = req.query;
    const work = await service.listWork({ ...(mac !== undefined ? { mac } : {}), ...(kind !== undefined ? { kind } : {}), ...(limit !== undefined ? { limit: Number(limit) } : {}) });
    return { work: work.map(workView) };
  });

  app.get('/agents/work/:id', { config: { role: 'viewer' }, schema: agentsApi.workOne }, async (req) => workView(await service.getWork(Number(req.params.id))));

  app.get('/agents/:id', { config: { role: 'viewer' }, schema: agentsApi.get }, async (req) => agentView(await service.findAgent(req.params.id)));

  app.post('/agents/:id/approve', { config: { role: 'admin' }, schema: agentsApi.approve }, async (req) => agentView(await service.approve(req.params.id, req.body?.host ?? null)));

  app.post('/agents/:id/revoke', { config: { role: 'admin' }, schema: agentsApi.revoke }, async (req) => agentView(await service.revoke(req.params.id)));

  // Package files reach the handler unread: they go to disk, hashed, as they arrive (the entries' upload registers the same parser in this scope).
  if (!app.hasContentTypeParser('application/octet-stream')) app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.put('/packages/files/:sha256', { config: { role: 'operator' }, schema: packagesApi.putFile, bodyLimit: ctx.maxUploadBytes }, async (req, reply) => {
    if (req.headers['content-type'] !== 'application/octet-stream') {
      return reply.code(415).send({ error: 'INVALID_INPUT', message: `Send the file as the request body with Content-Type: application/octet-stream (got ${JSON.stringify(req.headers['content-type'] ?? null)})` });
    }
    return service.storeFile(req.body as NodeJS.ReadableStream as import('node:stream').Readable, req.params.sha256, ctx.maxUploadBytes);
  });

  app.post('/packages', { config: { role: 'operator' }, schema: packagesApi.add }, async (req, reply) => {
    const b = req.body;
    const p = await service.addPackage({
      name: b.name,
      files: b.files.map((f) => ({ name: f.name, sha256: f.sha256, executable: f.executable ?? false })),
      argv: b.argv,
      timeoutSeconds: b.timeoutSeconds ?? 3600,
      rebootCodes: b.rebootCodes ?? [],
      successCodes: b.successCodes ?? [0],
      createdBy: actorOf(req),
    });
    return reply.code(201).send(packageView(p));
  });

  app.get('/packages', { config: { role: 'viewer' }, schema: packagesApi.list }, async () => ({ packages: (await service.listPackages()).map(packageView) }));

  app.get('/packages/:name', { config: { role: 'viewer' }, schema: packagesApi.get }, async (req) => packageView(await service.getPackage(req.params.name, req.query.revision !== undefined ? Number(req.query.revision) : undefined)));

  app.post('/packages/:name/deploy', { config: { role: 'operator' }, schema: packagesApi.deploy }, async (req, reply) => {
    const macs = await targetMacs(req.body);
    const at = req.body.at;
    if (at !== undefined && !Number.isFinite(Date.parse(at))) throw new FleetbootError('INVALID_INPUT', `"at" must be an ISO 8601 time: got ${JSON.stringify(at)}`);
    const work = await service.deployPackage(req.params.name, macs, { notBefore: at === undefined ? null : new Date(at).toISOString(), createdBy: actorOf(req) });
    return reply.code(201).send({ work: work.map(workView) });
  });
}
