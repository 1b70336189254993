/**
 * Endpoint agents, their enrolment tokens, the work handed to them and
 * software packages: /api/v1/agents..., /api/v1/packages... (see ./common.ts).
 * The agents' own protocol (/endpoint/v1) is src/model/endpoint.ts.
 */
import { FILE_NAME_PATTERN, NAME_PATTERN } from '../../model/validate.js';
import { dateTime, errorResponses, idParams, limitString, macString, nameString, nullableDateTime, nullableInt, nullableString } from './common.js';
import type { ApiType } from './index.js';

const agentIdOrMac = { type: 'string', minLength: 12, maxLength: 32, description: 'An agent id (32 hex digits) or the MAC of its host.' } as const;
const hostRef = { type: ['object', 'null'], additionalProperties: false, required: ['mac', 'name'], properties: { mac: { type: 'string' }, name: nullableString } } as const;
const identity = {
  type: 'object',
  additionalProperties: false,
  required: ['macs', 'smbiosUuid', 'smbiosSerial', 'hostname', 'os', 'agentVersion'],
  properties: {
    macs: { type: 'array', items: { type: 'string' } },
    smbiosUuid: nullableString,
    smbiosSerial: nullableString,
    hostname: nullableString,
    os: nullableString,
    agentVersion: { type: 'string' },
  },
} as const;

export const agentSchema = {
  $id: 'Agent',
  type: 'object',
  description: 'An endpoint agent (fleetboot-agent on an installed machine): its own key, the host it acts for and what it reported.',
  additionalProperties: false,
  required: ['id', 'state', 'host', 'identity', 'lastIdentity', 'lastIp', 'enrolledAt', 'approvedAt', 'revokedAt', 'lastSeenAt'],
  properties: {
    id: { type: 'string', description: 'The first 32 hex digits of the sha256 of its public key.' },
    state: { type: 'string', enum: ['active', 'pending', 'revoked'], description: 'pending: enrolled without a token, waiting for an administrator; revoked: its key is refused.' },
    host: { ...hostRef, description: 'The host it acts for (null while pending).' },
    identity: { ...identity, description: 'The machine it enrolled on (a copy of its key used elsewhere is refused).' },
    lastIdentity: { ...identity, type: ['object', 'null'], description: 'What it reported last.' },
    lastIp: nullableString,
    enrolledAt: dateTime,
    approvedAt: nullableDateTime,
    revokedAt: nullableDateTime,
    lastSeenAt: nullableDateTime,
  },
} as const;
export type Agent = ApiType<'Agent'>;

export const agentListSchema = {
  $id: 'AgentList',
  type: 'object',
  additionalProperties: false,
  required: ['agents'],
  properties: { agents: { type: 'array', items: { $ref: 'Agent#' } } },
} as const;

export const enrolTokenSchema = {
  $id: 'EnrolToken',
  type: 'object',
  description: 'An enrolment token (its secret is shown once, when it is made).',
  additionalProperties: false,
  required: ['id', 'host', 'group', 'usesLeft', 'uses', 'createdAt', 'createdBy', 'expiresAt', 'revokedAt', 'taskId', 'macBound'],
  properties: {
    id: { type: 'integer' },
    host: { ...nullableString, description: 'The host the agent becomes (MAC); null: the host with a MAC the agent reports (made when none has).' },
    group: { ...nullableString, description: "The group the agent's host joins." },
    usesLeft: { type: 'integer' },
    uses: { type: 'integer' },
    createdAt: dateTime,
    createdBy: { type: 'string' },
    expiresAt: dateTime,
    revokedAt: nullableDateTime,
    taskId: { type: ['integer', 'null'], description: 'The deploy task that made it (task deploy --enrol) and wrote it into the deployed system; null: made by an administrator.' },
    macBound: { type: 'boolean', description: "It enrols only an agent that reports its host's MAC (a deploy's token, which crossed the boot environment's plain HTTP)." },
  },
} as const;
export type EnrolToken = ApiType<'EnrolToken'>;

export const createdEnrolTokenSchema = {
  $id: 'CreatedEnrolToken',
  type: 'object',
  additionalProperties: false,
  required: ['token', 'info'],
  properties: { token: { type: 'string', description: 'The secret: shown this once, only its sha256 is kept.' }, info: { $ref: 'EnrolToken#' } },
} as const;

export type CreatedEnrolToken = ApiType<'CreatedEnrolToken'>;

export const enrolTokenListSchema = {
  $id: 'EnrolTokenList',
  type: 'object',
  additionalProperties: false,
  required: ['tokens'],
  properties: { tokens: { type: 'array', items: { $ref: 'EnrolToken#' } } },
} as const;

export const agentWorkSchema = {
  $id: 'AgentWork',
  type: 'object',
  description: 'Work for an endpoint agent (a package run, an inventory, a host name, a reboot, a wake relay) and how it ended.',
  additionalProperties: false,
  required: [
    'id', 'mac', 'hostName', 'kind', 'package', 'taskId', 'state', 'notBefore', 'createdAt', 'createdBy', 'agentId', 'deliveries', 'sentAt', 'finishedAt',
    'exitCode', 'signal', 'durationMs', 'stdout', 'stderr', 'message', 'rebootRequested',
  ],
  properties: {
    id: { type: 'integer' },
    mac: { type: 'string' },
    hostName: nullableString,
    kind: { type: 'string', enum: ['inventory', 'hostname', 'reboot', 'package', 'wake'] },
    package: { type: ['object', 'null'], additionalProperties: false, required: ['name', 'revision'], properties: { name: { type: 'string' }, revision: { type: 'integer' } } },
    taskId: { ...nullableInt, description: 'reboot: the imaging task it reboots the machine into.' },
    state: {
      type: 'string',
      enum: ['queued', 'sent', 'succeeded', 'failed', 'hash-mismatch', 'bad-signature', 'timeout', 'interrupted', 'refused', 'cancelled', 'lost'],
      description: 'sent: handed to the agent, not reported yet. hash-mismatch/bad-signature: refused before anything ran. interrupted: the machine stopped while it ran (never run twice). lost: handed out 3 times and never reported.',
    },
    notBefore: { ...nullableDateTime, description: 'Not handed out before this time.' },
    createdAt: dateTime,
    createdBy: { type: 'string' },
    agentId: nullableString,
    deliveries: { type: 'integer' },
    sentAt: nullableDateTime,
    finishedAt: nullableDateTime,
    exitCode: nullableInt,
    signal: nullableString,
    durationMs: nullableInt,
    stdout: { ...nullableString, description: 'The last 8 KB of its standard output.' },
    stderr: { ...nullableString, description: 'The last 8 KB of its standard error.' },
    message: nullableString,
    rebootRequested: { type: 'boolean', description: 'Its exit code was one of the reboot codes: the agent rebooted the machine.' },
  },
} as const;
export type AgentWork = ApiType<'AgentWork'>;

export const agentWorkListSchema = {
  $id: 'AgentWorkList',
  type: 'object',
  additionalProperties: false,
  required: ['work'],
  properties: { work: { type: 'array', items: { $ref: 'AgentWork#' } } },
} as const;

export const packageSchema = {
  $id: 'Package',
  type: 'object',
  description: 'A software package revision (FOG snapin, Altiris RapidInstall): files stored by sha256 and a command, signed by the server.',
  additionalProperties: false,
  required: ['name', 'revision', 'files', 'argv', 'timeoutSeconds', 'rebootCodes', 'successCodes', 'createdAt', 'createdBy'],
  properties: {
    name: { type: 'string' },
    revision: { type: 'integer' },
    files: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['name', 'sha256', 'size', 'executable'], properties: { name: { type: 'string' }, sha256: { type: 'string' }, size: { type: 'integer' }, executable: { type: 'boolean' } } },
    },
    argv: { type: 'array', items: { type: 'string' }, description: 'The command as an argument array (no shell), run in the directory holding the files.' },
    timeoutSeconds: { type: 'integer' },
    rebootCodes: { type: 'array', items: { type: 'integer' } },
    successCodes: { type: 'array', items: { type: 'integer' } },
    createdAt: dateTime,
    createdBy: { type: 'string' },
  },
} as const;
export type Package = ApiType<'Package'>;

export const packageListSchema = {
  $id: 'PackageList',
  type: 'object',
  additionalProperties: false,
  required: ['packages'],
  properties: { packages: { type: 'array', items: { $ref: 'Package#' } } },
} as const;

const targets = {
  macs: { type: 'array', minItems: 1, maxItems: 10_000, items: macString },
  group: nameString,
} as const;

const exitCodes = { type: 'array', maxItems: 32, items: { type: 'integer', minimum: -2147483648, maximum: 4294967295 } } as const;

export const agentsApi = {
  list: {
    tags: ['agents'],
    summary: 'List endpoint agents',
    querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: ['active', 'pending', 'revoked'] }, mac: macString } },
    response: { 200: { $ref: 'AgentList#' }, ...errorResponses },
  },
  get: {
    tags: ['agents'],
    summary: 'One endpoint agent',
    params: { type: 'object', required: ['id'], properties: { id: agentIdOrMac } },
    response: { 200: { $ref: 'Agent#' }, ...errorResponses },
  },
  approve: {
    tags: ['agents'],
    summary: 'Approve a pending agent',
    description: 'The agent becomes active for `host` (a MAC; made when no host has it), or for the host with a MAC it reported. Another active agent of that host is revoked.',
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } } },
    body: { type: 'object', additionalProperties: false, properties: { host: macString } },
    response: { 200: { $ref: 'Agent#' }, ...errorResponses },
  },
  revoke: {
    tags: ['agents'],
    summary: 'Revoke an agent',
    description: "Its key is refused from its next request on (401); its sessions end. The machine's agent must enrol again with a new token.",
    params: { type: 'object', required: ['id'], properties: { id: agentIdOrMac } },
    response: { 200: { $ref: 'Agent#' }, ...errorResponses },
  },
  tokens: {
    tags: ['agents'],
    summary: 'List enrolment tokens',
    response: { 200: { $ref: 'EnrolTokenList#' }, ...errorResponses },
  },
  createToken: {
    tags: ['agents'],
    summary: 'Make an enrolment token',
    description: 'For one host (`host`), for the hosts of a group (`group`: the agent joins it), or for any machine (neither). `uses` (default 1), `ttlSeconds` (default a day).',
    body: {
      type: 'object',
      additionalProperties: false,
      properties: { host: macString, group: nameString, ttlSeconds: { type: 'integer', minimum: 60, maximum: 366 * 86400 }, uses: { type: 'integer', minimum: 1, maximum: 100_000 } },
    },
    response: { 201: { $ref: 'CreatedEnrolToken#' }, ...errorResponses },
  },
  revokeToken: {
    tags: ['agents'],
    summary: 'Revoke an enrolment token',
    params: idParams,
    response: { 200: { $ref: 'EnrolToken#' }, ...errorResponses },
  },
  queue: {
    tags: ['agents'],
    summary: 'Ask agents to do something',
    description: '`inventory` (refresh the inventory), `hostname` (set the machine\'s name to the host\'s name here), `reboot`, for `macs` or a `group`.',
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['kind'],
      properties: { kind: { type: 'string', enum: ['inventory', 'hostname', 'reboot'] }, ...targets },
    },
    response: { 201: { $ref: 'AgentWorkList#' }, ...errorResponses },
  },
  wake: {
    tags: ['agents'],
    summary: 'Wake machines through an agent on their segment',
    description: 'The agent of host `via` sends the magic packets on its own segments (for routed subnets whose directed broadcasts are dropped).',
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['via', 'macs'],
      properties: { via: macString, macs: { type: 'array', minItems: 1, maxItems: 1000, items: macString }, port: { type: 'integer', minimum: 1, maximum: 65535 } },
    },
    response: { 201: { $ref: 'AgentWork#' }, ...errorResponses },
  },
  work: {
    tags: ['agents'],
    summary: 'Work of agents and how it ended (package runs, inventories...)',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { mac: macString, kind: { type: 'string', enum: ['inventory', 'hostname', 'reboot', 'package', 'wake'] }, limit: limitString },
    },
    response: { 200: { $ref: 'AgentWorkList#' }, ...errorResponses },
  },
  workOne: {
    tags: ['agents'],
    summary: 'One piece of agent work',
    params: idParams,
    response: { 200: { $ref: 'AgentWork#' }, ...errorResponses },
  },
} as const;

export const packagesApi = {
  putFile: {
    tags: ['packages'],
    summary: 'Upload a package file',
    description: 'The bytes (application/octet-stream) of a file whose sha256 is in the URL; refused when they hash otherwise. A file there already is kept.',
    params: { type: 'object', required: ['sha256'], properties: { sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } } },
    response: {
      200: { type: 'object', additionalProperties: false, required: ['sha256', 'size', 'existed'], properties: { sha256: { type: 'string' }, size: { type: 'integer' }, existed: { type: 'boolean' } } },
      ...errorResponses,
    },
  },
  add: {
    tags: ['packages'],
    summary: 'Add a package (a new revision of it)',
    description: 'Files uploaded first (PUT /packages/files/:sha256); the server writes the manifest and signs it with its package key.',
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'files', 'argv'],
      properties: {
        name: { type: 'string', pattern: NAME_PATTERN },
        files: {
          type: 'array',
          minItems: 1,
          maxItems: 256,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'sha256'],
            properties: { name: { type: 'string', pattern: FILE_NAME_PATTERN }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, executable: { type: 'boolean' } },
          },
        },
        argv: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', minLength: 0, maxLength: 4096 } },
        timeoutSeconds: { type: 'integer', minimum: 1, maximum: 7 * 86400 },
        rebootCodes: exitCodes,
        successCodes: { ...exitCodes, minItems: 1 },
      },
    },
    response: { 201: { $ref: 'Package#' }, ...errorResponses },
  },
  list: {
    tags: ['packages'],
    summary: 'List packages (newest revision of each)',
    response: { 200: { $ref: 'PackageList#' }, ...errorResponses },
  },
  get: {
    tags: ['packages'],
    summary: 'One package',
    params: { type: 'object', required: ['name'], properties: { name: nameString } },
    querystring: { type: 'object', additionalProperties: false, properties: { revision: { type: 'string', pattern: '^[1-9][0-9]{0,8}$' } } },
    response: { 200: { $ref: 'Package#' }, ...errorResponses },
  },
  deploy: {
    tags: ['packages'],
    summary: 'Run a package on machines',
    description: 'Its newest revision, on `macs` or every member of `group`, handed to each machine\'s agent at its next poll (or from `at`, an absolute ISO 8601 time).',
    params: { type: 'object', required: ['name'], properties: { name: nameString } },
    body: { type: 'object', additionalProperties: false, properties: { ...targets, at: { type: 'string', format: 'date-time' } } },
    response: { 201: { $ref: 'AgentWorkList#' }, ...errorResponses },
  },
} as const;
