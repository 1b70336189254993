/**
 * Nodes: /api/v1/nodes... (see ./common.ts). Every Fleetboot server sharing
 * the database is a node (src/nodes/service.ts).
 */
import { dateTime, errorResponses, nameParams, nullableDateTime, nullableInt, nullableString } from './common.js';
import type { ApiType } from './index.js';

export const nodeSchema = {
  $id: 'Node',
  type: 'object',
  description: 'A Fleetboot server sharing the database. It is down when it stopped, or after 3 missed heartbeats; down nodes get no new work.',
  additionalProperties: false,
  required: ['name', 'state', 'self', 'addresses', 'subnets', 'groups', 'httpUrl', 'httpsUrl', 'tlsSha256', 'capacityBytes', 'freeBytes', 'version', 'startedAt', 'heartbeatAt', 'heartbeatSeconds', 'heartbeatAgeSeconds', 'stoppedAt', 'createdAt'],
  properties: {
    name: { type: 'string' },
    state: { type: 'string', enum: ['up', 'down'] },
    self: { type: 'boolean', description: 'The node that answers this request.' },
    addresses: { type: 'array', items: { type: 'string' } },
    subnets: { type: 'array', items: { type: 'string' }, description: "The subnets it serves: node.subnets, else its DHCP pools' (server mode); its own segment's and node.subnets (proxy or no DHCP)." },
    groups: { type: 'array', items: { type: 'string' }, description: 'The groups it is in (its node.groups): an image assigned to `group:NAME` is pulled by every node in that group.' },
    httpUrl: { ...nullableString, description: 'The base URL of its HTTP (boot files, image streams).' },
    httpsUrl: { ...nullableString, description: 'The base URL of its HTTPS (the API, and image pulls between nodes); null: HTTPS is off.' },
    tlsSha256: { ...nullableString, description: 'sha256 (hex, of the DER) of the certificate its HTTPS serves: the other nodes accept its HTTPS only with this certificate (pinning). null: HTTPS is off.' },
    capacityBytes: { ...nullableInt, description: "Its data directory's file system, where images are kept; null: unknown." },
    freeBytes: { ...nullableInt, description: 'Free there for the server; refreshed at each heartbeat.' },
    version: { type: 'string' },
    startedAt: dateTime,
    heartbeatAt: dateTime,
    heartbeatSeconds: { type: 'integer', description: 'Its heartbeat interval.' },
    heartbeatAgeSeconds: { type: 'integer', description: 'Seconds since its last heartbeat, when asked.' },
    stoppedAt: { ...nullableDateTime, description: 'When it stopped cleanly; null while it runs (or after a crash).' },
    createdAt: dateTime,
  },
} as const;
export type Node = ApiType<'Node'>;

export const nodeListSchema = {
  $id: 'NodeList',
  type: 'object',
  additionalProperties: false,
  required: ['nodes', 'self', 'replicationLag'],
  properties: {
    nodes: { type: 'array', items: { $ref: 'Node#' } },
    self: { ...nullableString, description: 'The name of the node that answers.' },
    replicationLag: {
      type: 'array',
      description: 'For each node that is up, the ready revisions assigned to it (the image\'s nodes) it holds no verified copy of, oldest first (`fleetboot doctor` warns past replication.lagWarnMinutes).',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['node', 'image', 'number', 'state', 'since', 'holders', 'error'],
        properties: {
          node: { type: 'string' },
          image: { type: 'string' },
          number: { type: 'integer' },
          state: { type: 'string', enum: ['missing', 'copying', 'corrupt'] },
          since: { ...dateTime, description: 'When the revision became ready, or when the node first registered if later.' },
          holders: { type: 'integer', description: 'Other nodes holding it verified (0: nobody can pull it).' },
          error: nullableString,
        },
      },
    },
  },
} as const;
export type NodeList = ApiType<'NodeList'>;

export const nodesApi = {
  list: {
    tags: ['nodes'],
    summary: 'List the nodes',
    description: 'Every server sharing the database, by name, up or down.',
    response: { 200: { $ref: 'NodeList#' }, ...errorResponses },
  },
  show: {
    tags: ['nodes'],
    summary: 'Show a node',
    params: nameParams,
    response: { 200: { $ref: 'Node#' }, ...errorResponses },
  },
  remove: {
    tags: ['nodes'],
    summary: 'Remove a node',
    description: 'For a server that is gone for good. 409 while it is up, unless `force=true` (a running node registers again at its next heartbeat), and always for the node that answers.',
    params: nameParams,
    querystring: { type: 'object', additionalProperties: false, properties: { force: { type: 'string', enum: ['true', 'false', '1', '0'] } } },
    response: { 200: { type: 'object', additionalProperties: false, required: ['deleted'], properties: { deleted: { type: 'string' } } }, ...errorResponses },
  },
} as const;
