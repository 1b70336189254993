/**
 * The HTTP application: built here, listened on by server.ts; tests call
 * `app.inject()` with no socket.
 *
 *   boot (no auth):  GET /boot.ipxe, GET /boot/decide, GET|HEAD /boot/entries/:name/:file,
 *                    GET|HEAD /tftp/*
 *                    GET|HEAD /boot/env/vmlinuz|initrd.img, GET /boot/task
 *   agent (task token): /agent/v1/task... (src/imaging/protocol.ts)
 *   endpoint agents (HTTPS only; key, then session): /endpoint/v1/... (src/model/endpoint.ts)
 *   API (a role per route, src/http/auth.ts; Bearer token or session cookie):
 *                    /api/v1/entries..., /api/v1/hosts..., /api/v1/status, /api/v1/dhcp/leases,
 *                    /api/v1/images..., /api/v1/tasks..., /api/v1/groups..., /api/v1/jobs...,
 *                    /api/v1/schedules..., /api/v1/wake..., /api/v1/multicast...,
 *                    /api/v1/auth/login|logout|me, /api/v1/users..., /api/v1/tokens...,
 *                    /api/v1/sessions..., /api/v1/audit, /api/v1/events (live events, SSE),
 *                    /api/v1/tls, /api/v1/tls/renew, /api/v1/agents..., /api/v1/packages...,
 *                    /api/v1/metrics (Prometheus text, role viewer), /api/v1/nodes...,
 *                    /api/v1/openapi.json
 *   Every /api/v1 write is written to the audit log (src/http/audit.ts).
 *   console (no auth; it asks the API): GET /, /ui, /ui/... (src/http/console.ts)
 *   API reference (static files, no auth): GET /api/docs, /api/docs/FILE
 *
 * The /api/v1 routes' schemas (src/http/schemas/) are also the OpenAPI 3.1
 * document: @fastify/swagger collects them as routes are added (only
 * /api/v1 goes in it), and docs/openapi.json is its committed copy
 * (test/api-openapi.test.ts fails when they differ).
 */
import type { VerifyResult } from '../replication/service.js';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { httpBaseUrl, type FleetbootConfig } from '../config/config.js';
import { ipxeUrlProblem } from '../boot/ipxe.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Store } from '../store/index.js';
import type { AppContext, BootEventSink, RuntimeStatus } from './context.js';
import { clientAddress } from './client-address.js';
import { httpBootEvent, type HttpFetchWhat } from '../boot/boot-events.js';
import { enforceRouteRoles } from './auth.js';
import { installAuditLog } from './audit.js';
import { createAuthService, type AuthService } from '../auth/service.js';
import type { ScryptParams } from '../lib/password-hash.js';
import { authRoutes } from './routes/api-auth.js';
import { userRoutes } from './routes/api-users.js';
import { tokenRoutes } from './routes/api-tokens.js';
import { auditRoutes } from './routes/api-audit.js';
import { installErrorHandlers } from './errors.js';
import { entryRoutes } from './routes/api-entries.js';
import { hostRoutes } from './routes/api-hosts.js';
import { statusRoutes } from './routes/api-status.js';
import { metricsRoutes } from './routes/api-metrics.js';
import { dhcpRoutes } from './routes/api-dhcp.js';
import { imageRoutes } from './routes/api-images.js';
import { taskRoutes } from './routes/api-tasks.js';
import { groupRoutes } from './routes/api-groups.js';
import { jobRoutes } from './routes/api-jobs.js';
import { scheduleRoutes } from './routes/api-schedules.js';
import { wakeRoutes } from './routes/api-wake.js';
import type { WakeService } from '../wake/service.js';
import type { MulticastService } from '../multicast/service.js';
import { multicastRoutes } from './routes/api-multicast.js';
import { timelineRoutes } from './routes/api-timeline.js';
import { tlsRoutes } from './routes/api-tls.js';
import { docsRoutes, openapiRoutes } from './routes/api-docs.js';
import { openapiOptions } from './openapi.js';
import { sharedSchemas } from './schemas/index.js';
import { eventRoutes, type EventStreamOptions } from './routes/api-events.js';
import { createEventBus, type EventBus } from '../events/bus.js';
import { bootRoutes } from './routes/boot.js';
import { tftpRoutes } from './routes/tftp.js';
import { agentRoutes } from './routes/agent.js';
import { createImagingService, type ImagingService } from '../imaging/tasks.js';
import { AGENT_PREFIX } from '../imaging/protocol.js';
import { createBootDecider, type BootDecider } from '../imaging/boot-decider.js';
import { consoleRoutes } from './console.js';
import { createEndpointService, type EndpointService } from '../endpoints/service.js';
import { createDeployEnrolment } from '../endpoints/deploy-enrol.js';
import { endpointRoutes, ENDPOINT_PREFIX } from './routes/endpoint.js';
import { agentRoutesApi } from './routes/api-agents.js';
import { nodeRoutes } from './routes/api-nodes.js';
import { nodeImageRoutes, NODE_PREFIX } from './routes/node-images.js';
import { fleetbootPackageDir } from './version.js';
import { join } from 'node:path';

export type { RuntimeStatus } from './context.js';

export interface AppOptions {
  store: Store;
  config: Readonly<FleetbootConfig>;
  serverIp: string;
  logger: Logger;
  /** The local admin token (<dataDir>/api-token; Bearer, role admin). */
  token: string;
  /** Tests: the clock of sessions, tokens and the login throttle (ms since the epoch), and cheaper password hashing. */
  auth?: { now?: () => number; scrypt?: Readonly<ScryptParams> };
  /**
   * The base URL for iPXE scripts. Default: httpBaseUrl(config, serverIp). A
   * function, so the server can give the real port after listening on port 0.
   */
  baseUrl?: () => string;
  /** Ports actually bound, for /api/v1/status. */
  runtime?: () => RuntimeStatus;
  /** Largest accepted upload of an entry file. Default 8 GiB. */
  maxUploadBytes?: number;
  /** Called synchronously after a host was added, changed or deleted through the API (DHCP reservations). */
  onHostsChanged?: () => void;
  /** The imaging lifecycle; made here when absent (the server passes its own, shared with the reaper). */
  imaging?: ImagingService;
  /** Wake-on-LAN (the server passes its own); without it POST /api/v1/wake answers 503. */
  wake?: WakeService;
  /** Called after tasks or schedules changed through the API (the server pokes the scheduler and the wake service). */
  onTasksChanged?: () => void;
  /** Called after a revision was approved or an image's nodes changed through the API (the server pokes replication). */
  onImagesChanged?: () => void;
  /** Multicast sessions (the server passes its own); without it multicast deploys are refused and /api/v1/multicast lists none. */
  multicast?: MulticastService;
  /** Where boot steps are reported (the server's recorder); without it nothing is recorded. */
  bootEvents?: BootEventSink;
  /**
   * Live events (the server passes its own, which its services publish on);
   * made here when absent, and then given to the imaging service made here.
   */
  events?: EventBus;
  /** GET /api/v1/events: heartbeat, retry hint, streams per principal, bytes a slow client may owe (tests shorten them). */
  eventStream?: EventStreamOptions;
  /** The built web console (default: web/dist in Fleetboot's directory); null: no console routes. */
  consoleDir?: string | null;
  /** The HTTPS certificates (the server passes its TLS service); without it /api/v1/tls answers 503. */
  tls?: AppContext['tls'];
  /** The endpoint agents' service (the server passes its own); made here when absent. */
  endpoints?: EndpointService;
  /** The PEM of the CA endpoint agents pin (GET /endpoint/v1/ca); absent or null: HTTPS is off. */
  caPem?: () => string | null;
  /** The Prometheus exposition text for GET /api/v1/metrics (the server passes its metrics' render); without it the route answers 503. */
  metrics?: () => Promise<string>;
  /** Tests with app.inject only: serve /endpoint/v1 over plain HTTP. */
  endpointOverPlainHttp?: boolean;
  /** The boot decision with its effects (the server passes its own, shared with GRUB over TFTP); made here when absent. */
  bootDecider?: BootDecider;
  /** This server's node name (src/nodes/service.ts): /api/v1/status shows it, DELETE /api/v1/nodes refuses it. Absent: null. */
  nodeName?: string | null;
  /** Nearest node: the other node serving a client's subnet (the server passes its node directory's lookup). Absent: always this one. */
  servingNode?: AppContext['servingNode'];
  /** Re-hash this node's verified copies of an image now (the server passes its replication's verifyOnce). Absent: 409. */
  verifyImage?: (image: string) => Promise<VerifyResult[]>;
}

export function buildApp(opts: AppOptions): FastifyInstance {
  const { store, config, serverIp, token } = opts;
  const log = opts.logger;
  const baseUrl = opts.baseUrl ?? (() => httpBaseUrl(config, serverIp));
  const problem = ipxeUrlProblem(baseUrl());
  if (problem) throw new RangeError(`The HTTP base URL ${JSON.stringify(baseUrl())} cannot go into iPXE scripts: it ${problem}`);

  const auth: AuthService = createAuthService({
    store,
    localToken: token,
    sessionIdleMinutes: config.auth.sessionIdleMinutes,
    sessionMaxHours: config.auth.sessionMaxHours,
    ...(opts.auth?.now ? { now: opts.auth.now } : {}),
    ...(opts.auth?.scrypt ? { scrypt: opts.auth.scrypt } : {}),
  });
  const events = opts.events ?? createEventBus({ onSubscriberError: (err) => log.error({ subsystem: 'events', err: errorMessage(err) }, 'an event stream failed') });
  const endpoints = opts.endpoints ?? createEndpointService({ store, log, settings: config.agents });
  // Deploys with enrol (when the server passes no imaging service of its own): HTTPS's port and CA as this app knows them.
  const enrolment = createDeployEnrolment({ endpoints, serverIp, https: () => ({ port: ctx.runtime().httpsPort, caPem: opts.caPem?.() ?? null }) });

  const imaging = opts.imaging ?? createImagingService({ store, config, log, events, enrolment });
  const bootEvents = opts.bootEvents ?? null;
  const ctx: AppContext = {
    auth,
    store,
    config,
    serverIp,
    log,
    baseUrl: () => baseUrl().replace(/\/+$/, ''),
    runtime: opts.runtime ?? (() => ({ httpPort: config.http.port, httpsPort: null, tftpPort: config.tftp.enabled ? config.tftp.port : null, dhcpPort: null, pxePort: null })),
    maxUploadBytes: opts.maxUploadBytes ?? 8 * 1024 ** 3,
    startedAt: new Date(),
    imaging,
    bootDecider: opts.bootDecider ?? createBootDecider({ store, config, log, imaging, events, bootEvents }),
    wake: opts.wake ?? null,
    multicast: opts.multicast ?? null,
    bootEvents,
    events,
    tls: opts.tls ?? null,
    metrics: opts.metrics ?? null,
    nodeName: opts.nodeName ?? null,
    servingNode: opts.servingNode ?? (() => null),
    verifyImage: opts.verifyImage ?? null,
    tasksChanged() {
      try {
        opts.onTasksChanged?.();
      } catch (err) {
        log.error({ subsystem: 'api', err: errorMessage(err) }, 'notifying the scheduler after a change failed');
      }
    },
    imagesChanged() {
      try {
        opts.onImagesChanged?.();
      } catch (err) {
        log.error({ subsystem: 'api', err: errorMessage(err) }, 'poking replication after an image change failed');
      }
    },
    hostsChanged() {
      if (!opts.onHostsChanged) return;
      try {
        opts.onHostsChanged();
      } catch (err) {
        log.error({ subsystem: 'api', err: errorMessage(err) }, 'reloading after a host change failed');
      }
    },
  };

  const fastifyLog: FastifyBaseLogger = log.child({ subsystem: 'http' });
  const app = Fastify({
    loggerInstance: fastifyLog,
    // Our own log lines (decisions, files served) replace Fastify's per-request ones.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // Reject unknown properties instead of dropping them, and do not coerce JSON types.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    routerOptions: { maxParamLength: 1024 },
  });

  // A task queued with `reboot` wakes its machine's long poll at once.

  installErrorHandlers(app);
  // Long polls end at once when the server closes (they would hold the close for their wait).
  app.addHook('preClose', async () => {
    endpoints.close();
  });
  // The schemas routes reference by $id (src/http/schemas/index.ts), and the document made from the routes.
  for (const schema of sharedSchemas) app.addSchema(schema);
  app.register(swagger, openapiOptions());
  app.decorateRequest('principal', null);
  app.decorateRequest('auditActor', null);
  // The calling node, on node-to-node routes behind nodeAuthHook (src/http/node-auth.ts).
  app.decorateRequest('node', null);
  // Before any route: an /api/v1 route without a declared role stops the start (src/http/auth.ts).
  app.addHook('onRoute', enforceRouteRoles(auth));
  installAuditLog(app, store, log, () => auth.now());

  /** A fetch of the boot chain as a step of the machine's boot (its MAC comes from its address: src/events/boot-recorder.ts). */
  const recordFetch = (what: HttpFetchWhat, ip: string, path: string, status: number, length: unknown): void => {
    const bytes = Number(length);
    ctx.bootEvents?.record(httpBootEvent({ ip: clientAddress(ip), mac: null, what, path: path.slice(0, 300), status, bytes: Number.isFinite(bytes) ? bytes : null }));
  };

  /** One log line for a file or stream a machine fetched: what, how much, which range, how long. */
  const logServed = (req: FastifyRequest, reply: FastifyReply, path: string, msg: 'file served' | 'stream served'): void => {
    log.info(
      {
        subsystem: 'http',
        ip: req.ip,
        method: req.method,
        path: path.slice(0, 300),
        status: reply.statusCode,
        bytes: Number(reply.getHeader('content-length') ?? 0),
        range: req.headers.range,
        ms: Math.round(reply.elapsedTime),
      },
      msg,
    );
  };

  // One log line per file a machine fetches (the step a failed boot is followed by).
  app.addHook('onResponse', async (req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    if (path.startsWith('/boot/entries/') || path.startsWith('/boot/env/') || path.startsWith('/tftp/')) {
      logServed(req, reply, path, 'file served');
      if (req.method === 'GET') recordFetch('file', req.ip, path, reply.statusCode, reply.getHeader('content-length'));
    } else if (path.startsWith('/agent/v1/task/image/') && (req.method === 'GET' || req.method === 'HEAD')) {
      // The stream access log: one line per deploy stream read (which node served a deploy, with its ranges).
      logServed(req, reply, path, 'stream served');
    } else if (path === '/boot.ipxe' && req.method === 'GET') {
      recordFetch('script', req.ip, path, reply.statusCode, reply.getHeader('content-length'));
    } else if (path.startsWith('/api/')) {
      log.debug({ subsystem: 'api', ip: req.ip, method: req.method, path, status: reply.statusCode }, 'api request');
    }
  });

  app.register(async (scope) => {
    await bootRoutes(scope, ctx);
    await tftpRoutes(scope, ctx);
    await docsRoutes(scope);
  });
  app.register(
    async (api) => {
      await authRoutes(api, ctx);
      await userRoutes(api, ctx);
      await tokenRoutes(api, ctx);
      await auditRoutes(api, ctx);
      await entryRoutes(api, ctx);
      await hostRoutes(api, ctx);
      await statusRoutes(api, ctx);
      await metricsRoutes(api, ctx);
      await dhcpRoutes(api, ctx);
      await imageRoutes(api, ctx);
      await taskRoutes(api, ctx);
      await groupRoutes(api, ctx);
      await jobRoutes(api, ctx);
      await scheduleRoutes(api, ctx);
      await wakeRoutes(api, ctx);
      await multicastRoutes(api, ctx);
      await timelineRoutes(api, ctx);
      await tlsRoutes(api, ctx);
      await eventRoutes(api, ctx, opts.eventStream);
      await agentRoutesApi(api, ctx, endpoints);
      await nodeRoutes(api, ctx);
      await openapiRoutes(api);
    },
    { prefix: '/api/v1' },
  );
  app.register(
    async (agent) => {
      await agentRoutes(agent, ctx);
    },
    { prefix: AGENT_PREFIX },
  );
  // Other nodes (replication): node credentials, never users' (src/http/node-auth.ts).
  app.register(
    async (scope) => {
      await nodeImageRoutes(scope, ctx);
    },
    { prefix: NODE_PREFIX },
  );
  app.register(
    async (scope) => {
      await endpointRoutes(scope, ctx, { service: endpoints, caPem: opts.caPem ?? (() => null), ...(opts.endpointOverPlainHttp ? { allowPlainHttp: true } : {}) });
    },
    { prefix: ENDPOINT_PREFIX },
  );
  const packageDir = fleetbootPackageDir();
  const consoleDir = opts.consoleDir === undefined ? (packageDir === null ? null : join(packageDir, 'web', 'dist')) : opts.consoleDir;
  if (consoleDir !== null) app.register(async (scope) => consoleRoutes(scope, consoleDir));
  return app;
}
