/**
 * Wake-on-LAN: /api/v1/wake... (see ./common.ts).
 */
import { dateTime, errorResponses, macString, nameString } from './common.js';
import type { ApiType } from './index.js';

export const wakeTargetSchema = {
  $id: 'WakeTarget',
  type: 'object',
  description: 'Where magic packets go: a broadcast address and port, and why it was chosen.',
  additionalProperties: false,
  required: ['address', 'port', 'reason'],
  properties: { address: { type: 'string' }, port: { type: 'integer' }, reason: { type: 'string' } },
} as const;
export type WakeTarget = ApiType<'WakeTarget'>;

export const wakeRoundSchema = {
  $id: 'WakeRound',
  type: 'object',
  additionalProperties: false,
  required: ['macs', 'targets', 'repeats', 'spacingSeconds', 'sent', 'errors', 'agents'],
  properties: {
    macs: { type: 'array', items: { type: 'string' } },
    targets: { type: 'array', items: { $ref: 'WakeTarget#' } },
    repeats: { type: 'integer' },
    spacingSeconds: { type: 'integer' },
    sent: { type: 'integer', description: 'Datagrams of the first send.' },
    errors: { type: 'array', items: { type: 'string' }, description: 'What failed in the first send, one line per target.' },
    agents: { type: 'integer', description: "Endpoint agents asked to send the packets on the machines' own segments too (routed subnets)." },
  },
} as const;
export type WakeRound = ApiType<'WakeRound'>;

export const wakeTargetsSchema = {
  $id: 'WakeTargets',
  type: 'object',
  additionalProperties: false,
  required: ['targets', 'relays'],
  properties: {
    targets: { type: 'array', items: { $ref: 'WakeTarget#' } },
    relays: {
      type: 'array',
      description: 'DHCP relay agents heard (giaddr): their subnets are woken through them.',
      items: { type: 'object', additionalProperties: false, required: ['giaddr', 'firstSeenAt', 'lastSeenAt'], properties: { giaddr: { type: 'string' }, firstSeenAt: dateTime, lastSeenAt: dateTime } },
    },
  },
} as const;
export type WakeTargets = ApiType<'WakeTargets'>;

export const wakeApi = {
  wake: {
    tags: ['wake'],
    summary: 'Wake machines',
    description:
      'Magic packets for `macs` (any MAC, a host or not) or every member of `group`, sent `wake.repeats` times. 202: the first send is done, the repeats follow. 503 when Wake-on-LAN does not run in this server.',
    body: {
      type: 'object',
      additionalProperties: false,
      properties: { macs: { type: 'array', minItems: 1, maxItems: 10_000, items: macString }, group: nameString },
    },
    response: { 202: { $ref: 'WakeRound#' }, ...errorResponses },
  },
  targets: {
    tags: ['wake'],
    summary: 'Where magic packets go',
    description: 'The broadcast addresses the server sends to, and the relay agents it heard.',
    response: { 200: { $ref: 'WakeTargets#' }, ...errorResponses },
  },
} as const;
