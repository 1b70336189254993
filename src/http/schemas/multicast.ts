/**
 * Multicast sessions: /api/v1/multicast... (see ./common.ts).
 */
import { MAX_RATE_MBPS } from '../../model/multicast.js';
import { dateTime, errorResponses, idParams, idString, nullableDateTime, nullableInt, nullableNumber, nullableString } from './common.js';
import type { ApiType } from './index.js';

const sessionProperties = {
  id: { type: 'integer' },
  session: { type: 'string', description: 'The 64-bit session id of its datagrams (hex).' },
  jobId: nullableInt,
  image: { type: 'string' },
  revision: { type: 'integer' },
  address: { type: 'string', description: 'The multicast group address.' },
  port: { type: 'integer' },
  state: { type: 'string', enum: ['waiting', 'sending', 'finished', 'failed', 'cancelled'] },
  expected: { type: 'integer', description: 'Member tasks.' },
  minReceivers: { type: 'integer' },
  maxWaitSeconds: nullableInt,
  error: nullableString,
  stats: { description: "The sender's figures when it ended (an object), or null." },
  createdAt: dateTime,
  startedAt: nullableDateTime,
  finishedAt: nullableDateTime,
  node: { ...nullableString, description: 'The node (server) that runs it; null for sessions made before nodes existed.' },
} as const;

const sessionRequired = ['id', 'session', 'jobId', 'image', 'revision', 'address', 'port', 'state', 'expected', 'minReceivers', 'maxWaitSeconds', 'error', 'stats', 'createdAt', 'startedAt', 'finishedAt', 'node'] as const;

export const multicastSessionSchema = {
  $id: 'MulticastSession',
  type: 'object',
  description: 'One multicast session: it carries an image revision to the machines of a deploy job at once.',
  additionalProperties: false,
  required: sessionRequired,
  properties: sessionProperties,
} as const;
export type MulticastSession = ApiType<'MulticastSession'>;

const liveSchema = {
  type: ['object', 'null'],
  description: "The sender's figures while it runs (null otherwise: `stats` has the final ones).",
  additionalProperties: false,
  required: ['session', 'state', 'objectBytes', 'rateBps', 'maxRateBps', 'sweeps', 'datagrams', 'repairs', 'retransmittedShare', 'sendErrors', 'lastSendError', 'elapsedMs'],
  properties: {
    session: { type: 'string' },
    state: { type: 'string', enum: ['waiting', 'sending', 'finished', 'cancelled'] },
    objectBytes: { type: 'integer' },
    rateBps: { type: 'number' },
    maxRateBps: { type: 'number', description: 'The rate ceiling now.' },
    sweeps: { type: 'integer' },
    datagrams: { type: 'integer' },
    repairs: { type: 'integer' },
    retransmittedShare: { type: 'number', description: 'Repairs over first sends.' },
    sendErrors: { type: 'integer', description: 'Sends the kernel refused (the datagrams were lost).' },
    lastSendError: { type: 'integer', description: 'The errno of the last one.' },
    elapsedMs: { ...nullableNumber, description: 'Since sending began; null while waiting.' },
  },
} as const;

const memberSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['taskId', 'mac', 'taskState', 'tokenIp', 'bytesDone', 'bytesTotal', 'error', 'receiverState', 'receiverBytes', 'lossShare', 'reason'],
  properties: {
    taskId: { type: 'integer' },
    mac: { type: 'string' },
    taskState: { type: 'string' },
    tokenIp: nullableString,
    bytesDone: { type: 'integer' },
    bytesTotal: nullableInt,
    error: nullableString,
    receiverState: {
      type: ['string', 'null'],
      enum: ['active', 'waiting', 'done', 'failed', 'dropped', 'not joined', null],
      description: "The sender's view of its receiver while the session runs (null once it has ended).",
    },
    receiverBytes: nullableInt,
    lossShare: { ...nullableNumber, description: 'Share of the data datagrams it lost.' },
    reason: nullableString,
  },
} as const;

export const multicastSessionDetailSchema = {
  $id: 'MulticastSessionDetail',
  type: 'object',
  description: 'A multicast session with its live figures and its members.',
  additionalProperties: false,
  required: [...sessionRequired, 'live', 'members'],
  properties: { ...sessionProperties, live: liveSchema, members: { type: 'array', items: memberSchema } },
} as const;
export type MulticastSessionDetail = ApiType<'MulticastSessionDetail'>;

export const multicastSessionListSchema = {
  $id: 'MulticastSessionList',
  type: 'object',
  additionalProperties: false,
  required: ['sessions'],
  properties: { sessions: { type: 'array', items: { $ref: 'MulticastSession#' } } },
} as const;
export type MulticastSessionList = ApiType<'MulticastSessionList'>;

const detailRef = { $ref: 'MulticastSessionDetail#' } as const;

export const multicastApi = {
  list: {
    tags: ['multicast'],
    summary: 'List multicast sessions',
    description: 'Newest first; `active=true`: only waiting and sending ones.',
    querystring: { type: 'object', additionalProperties: false, properties: { active: { type: 'string', enum: ['true', 'false'] } } },
    response: { 200: { $ref: 'MulticastSessionList#' }, ...errorResponses },
  },
  show: {
    tags: ['multicast'],
    summary: 'Show a multicast session',
    description: 'Its rate and retransmitted share while it runs, and each member: task, receiver state, bytes, loss.',
    params: idParams,
    response: { 200: detailRef, ...errorResponses },
  },
  cancel: {
    tags: ['multicast'],
    summary: 'End a multicast session',
    description: 'Its members go on by unicast. To cancel the tasks themselves: POST /api/v1/jobs/{id}/cancel.',
    params: idParams,
    response: { 200: detailRef, ...errorResponses },
  },
  drop: {
    tags: ['multicast'],
    summary: 'Drop a member from a multicast session',
    description: 'A straggler leaves the session and goes on by unicast; the others stop waiting for it. 409 when it is not receiving now.',
    params: { type: 'object', required: ['id', 'task'], properties: { id: idString, task: idString } },
    response: { 200: detailRef, ...errorResponses },
  },
  rate: {
    tags: ['multicast'],
    summary: "Change a running session's rate ceiling",
    params: idParams,
    body: { type: 'object', additionalProperties: false, required: ['maxRateMbps'], properties: { maxRateMbps: { type: 'number', exclusiveMinimum: 0, maximum: MAX_RATE_MBPS } } },
    response: { 200: detailRef, ...errorResponses },
  },
} as const;
