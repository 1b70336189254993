/**
 * Boot entries: /api/v1/entries... (see ./common.ts).
 */
import type { FromSchema } from 'json-schema-to-ts';
import { FILE_NAME_PATTERN, NAME_PATTERN } from '../../model/validate.js';
import { dateTime, errorResponses, nameParams, nameString } from './common.js';
import type { ApiType } from './index.js';

export const bootEntrySchema = {
  $id: 'BootEntry',
  type: 'object',
  description: 'What a host boots: a kernel, initrds (uploaded files or http(s) URLs) and a command line. Entries are immutable.',
  additionalProperties: false,
  required: ['name', 'kernel', 'initrds', 'cmdline', 'createdAt'],
  properties: {
    name: { type: 'string' },
    kernel: { type: 'string', description: 'An uploaded file of the entry, or an http(s) URL iPXE fetches as is.' },
    initrds: { type: 'array', items: { type: 'string' } },
    cmdline: { type: 'string' },
    createdAt: dateTime,
  },
} as const;
export type BootEntry = ApiType<'BootEntry'>;

export const bootEntryListSchema = {
  $id: 'BootEntryList',
  type: 'object',
  additionalProperties: false,
  required: ['entries'],
  properties: { entries: { type: 'array', items: { $ref: 'BootEntry#' } } },
} as const;
export type BootEntryList = ApiType<'BootEntryList'>;

const deletedEntry = {
  type: 'object',
  additionalProperties: false,
  required: ['deleted', 'unassigned'],
  properties: { deleted: { type: 'string' }, unassigned: { type: 'array', items: { type: 'string' }, description: 'The MACs of the hosts that booted it (force).' } },
} as const;
export type DeletedEntry = FromSchema<typeof deletedEntry>;

const uploaded = {
  type: 'object',
  additionalProperties: false,
  required: ['entry', 'file', 'size', 'sha256'],
  properties: { entry: { type: 'string' }, file: { type: 'string' }, size: { type: 'integer' }, sha256: { type: 'string' } },
} as const;
export type UploadedFile = FromSchema<typeof uploaded>;

const source = { type: 'string', minLength: 1, maxLength: 2048 } as const;

export const entriesApi = {
  list: {
    tags: ['entries'],
    summary: 'List boot entries',
    response: { 200: { $ref: 'BootEntryList#' }, ...errorResponses },
  },
  show: {
    tags: ['entries'],
    summary: 'Show a boot entry',
    params: nameParams,
    response: { 200: { $ref: 'BootEntry#' }, ...errorResponses },
  },
  create: {
    tags: ['entries'],
    summary: 'Add a boot entry',
    description:
      'Upload its local files first (PUT /api/v1/entries/{name}/files/{file}), then name them here; a value starting with http:// or https:// is a URL iPXE fetches as is. 409 when the name is taken.',
    body: {
      type: 'object',
      required: ['name', 'kernel'],
      additionalProperties: false,
      properties: { name: nameString, kernel: source, initrds: { type: 'array', maxItems: 32, items: source }, cmdline: { type: 'string', maxLength: 4096 } },
    },
    response: { 201: { $ref: 'BootEntry#' }, ...errorResponses },
  },
  remove: {
    tags: ['entries'],
    summary: 'Delete a boot entry',
    description: 'With its files. 409 while hosts boot it, unless `force=true`, which unassigns them first.',
    params: nameParams,
    querystring: { type: 'object', additionalProperties: false, properties: { force: { type: 'string', enum: ['true', 'false', '1', '0'] } } },
    response: { 200: deletedEntry, ...errorResponses },
  },
  upload: {
    tags: ['entries'],
    summary: 'Upload a file of a new boot entry',
    description:
      'The request body is the file (Content-Type: application/octet-stream), streamed to the entry\'s directory. Before the entry is added: 409 once it exists (entries cannot be changed). 415 for another content type.',
    consumes: ['application/octet-stream'],
    params: {
      type: 'object',
      required: ['name', 'file'],
      properties: { name: { type: 'string', pattern: NAME_PATTERN }, file: { type: 'string', pattern: FILE_NAME_PATTERN } },
    },
    response: { 201: uploaded, ...errorResponses },
  },
} as const;
