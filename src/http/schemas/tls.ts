/**
 * HTTPS certificates: /api/v1/tls... (see ./common.ts). The CA is what
 * browsers import and endpoint agents pin (`fleetboot-agent enroll
 * --ca-sha256`); the server certificate under it may be renewed freely.
 */
import { dateTime, errorResponses } from './common.js';
import type { ApiType } from './index.js';

const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the certificate (DER), lower-case hex.' } as const;

export const tlsInfoSchema = {
  $id: 'TlsInfo',
  type: 'object',
  description: 'The certificates HTTPS serves.',
  additionalProperties: false,
  required: ['ca', 'server'],
  properties: {
    ca: {
      type: ['object', 'null'],
      description: "The CA clients pin: Fleetboot's own, or https.caFile; null for an admin's certificate without https.caFile.",
      additionalProperties: false,
      required: ['pem', 'sha256', 'notAfter', 'subject'],
      properties: { pem: { type: 'string', description: 'The CA certificate, PEM.' }, sha256, notAfter: dateTime, subject: { type: 'string' } },
    },
    server: {
      type: 'object',
      additionalProperties: false,
      required: ['sha256', 'notAfter', 'names', 'issuedBy', 'configured'],
      properties: {
        sha256,
        notAfter: dateTime,
        names: { type: 'array', items: { type: 'string' }, description: 'Its subjectAltName: DNS names and IP addresses.' },
        issuedBy: { type: 'string' },
        configured: { type: 'boolean', description: "The admin's https.certFile rather than one from Fleetboot's CA." },
      },
    },
  },
} as const;
export type TlsInfo = ApiType<'TlsInfo'>;

export const tlsApi = {
  show: {
    tags: ['tls'],
    summary: 'Show the HTTPS certificates',
    description: 'The CA (its PEM and SHA-256, which `fleetboot-agent enroll --ca-sha256` takes) and the server certificate. 503 when HTTPS does not run.',
    response: { 200: { $ref: 'TlsInfo#' }, ...errorResponses },
  },
  renew: {
    tags: ['tls'],
    summary: 'Renew the server certificate',
    description:
      "A new server certificate under the same CA, served to new connections at once (no restart); clients that pin the CA keep working. With an admin's https.certFile, the files are read again. 503 when HTTPS does not run.",
    response: { 200: { $ref: 'TlsInfo#' }, ...errorResponses },
  },
} as const;
