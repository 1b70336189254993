/**
 * The DHCP server's leases: /api/v1/dhcp/leases (see ./common.ts).
 */
import { dateTime, errorResponses, nullableString } from './common.js';
import type { ApiType } from './index.js';

export const leaseSchema = {
  $id: 'Lease',
  type: 'object',
  description: 'A lease of the DHCP server (server mode).',
  additionalProperties: false,
  required: ['ip', 'mac', 'clientId', 'hostname', 'state', 'expiresAt', 'updatedAt', 'active'],
  properties: {
    ip: { type: 'string' },
    mac: { type: 'string' },
    clientId: nullableString,
    hostname: nullableString,
    state: { type: 'string', enum: ['offered', 'bound', 'released', 'expired', 'declined'] },
    expiresAt: dateTime,
    updatedAt: dateTime,
    active: { type: 'boolean', description: 'Held now: offered, bound or declined, and not expired.' },
  },
} as const;
export type Lease = ApiType<'Lease'>;

export const leaseListSchema = {
  $id: 'LeaseList',
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'leases'],
  properties: { mode: { type: 'string', enum: ['proxy', 'server', 'off'], description: 'dhcp.mode of the configuration.' }, leases: { type: 'array', items: { $ref: 'Lease#' } } },
} as const;
export type LeaseList = ApiType<'LeaseList'>;

export const dhcpApi = {
  leases: {
    tags: ['dhcp'],
    summary: "List the DHCP server's leases",
    description: '`all=false`: only the active ones.',
    querystring: { type: 'object', additionalProperties: false, properties: { all: { type: 'string', enum: ['true', 'false'] } } },
    response: { 200: { $ref: 'LeaseList#' }, ...errorResponses },
  },
} as const;
