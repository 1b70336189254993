/**
 * The running server: /api/v1/status, and the API's own document, /api/v1/openapi.json (see ./common.ts).
 */
import type { FromSchema } from 'json-schema-to-ts';
import { dateTime, errorResponses, nullableDateTime, nullableInt, nullableString } from './common.js';

const statusSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'node', 'version', 'serverIp', 'baseUrl', 'bootScriptUrl', 'dataDir', 'http', 'https', 'tftp', 'dhcp', 'counts', 'storage', 'startedAt', 'uptimeSeconds', 'activity'],
  properties: {
    name: { type: 'string' },
    node: { ...nullableString, description: "This server's node name among the servers sharing the database (null: it runs without one)." },
    version: { type: 'string' },
    serverIp: { type: 'string' },
    baseUrl: { type: 'string', description: 'The base URL put into iPXE scripts.' },
    bootScriptUrl: { type: 'string' },
    dataDir: { type: 'string' },
    http: { type: 'object', additionalProperties: false, required: ['port'], properties: { port: nullableInt } },
    https: {
      type: 'object',
      additionalProperties: false,
      required: ['port'],
      properties: { port: { ...nullableInt, description: 'The API, the console and the endpoint agents over TLS; null while HTTPS does not run.' } },
    },
    tftp: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled', 'port', 'root'],
      properties: { enabled: { type: 'boolean' }, port: { ...nullableInt, description: 'null while TFTP does not run.' }, root: { type: 'string' } },
    },
    dhcp: {
      type: 'object',
      additionalProperties: false,
      required: ['mode', 'port', 'pxePort'],
      properties: {
        mode: { type: 'string', enum: ['proxy', 'server', 'off'], description: 'As it runs: off (ports null) when no DHCP service runs.' },
        port: nullableInt,
        pxePort: nullableInt,
      },
    },
    counts: {
      type: 'object',
      additionalProperties: false,
      required: ['hosts', 'pendingHosts', 'entries'],
      properties: { hosts: { type: 'integer', description: 'Approved hosts.' }, pendingHosts: { type: 'integer' }, entries: { type: 'integer' } },
    },
    storage: {
      type: ['object', 'null'],
      description: "The file system of the data directory, where images are kept (null when it cannot be read).",
      additionalProperties: false,
      required: ['totalBytes', 'freeBytes', 'imagesBytes'],
      properties: { totalBytes: { type: 'integer' }, freeBytes: { type: 'integer', description: 'Free for the server.' }, imagesBytes: { type: 'integer', description: 'Stored image revisions.' } },
    },
    startedAt: dateTime,
    uptimeSeconds: { type: 'integer' },
    activity: {
      type: 'object',
      description: 'When each boot subsystem last answered a client since the server started (null: not yet): a DHCP answer, a TFTP reply, an HTTP fetch of the boot chain.',
      additionalProperties: false,
      required: ['dhcp', 'tftp', 'http'],
      properties: { dhcp: nullableDateTime, tftp: nullableDateTime, http: nullableDateTime },
    },
  },
} as const;
export type Status = FromSchema<typeof statusSchema>;

export const statusApi = {
  status: {
    tags: ['status'],
    summary: 'Show the running server',
    description: 'Version, addresses, the ports the services bound (not what the configuration asks for), counts, disk space.',
    response: { 200: statusSchema, ...errorResponses },
  },
  metrics: {
    tags: ['status'],
    summary: 'Prometheus metrics',
    description:
      'Counters and gauges in the Prometheus text exposition format 0.0.4 (Content-Type text/plain; version=0.0.4): DHCP answers, TFTP transfers and bytes, HTTP boot requests and decisions, tasks by state, imaging transfer bytes and rate, multicast sessions. Scrape it with a viewer\'s API token (Bearer). 503 when the server runs without metrics.',
    response: { 200: { type: 'string', description: 'The exposition text.' }, ...errorResponses },
  },
  openapi: {
    tags: ['status'],
    summary: 'This document',
    description: 'The OpenAPI 3.1 description of /api/v1, made from the routes\' own schemas. The interactive reference is at /api/docs.',
    response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses },
  },
} as const;
