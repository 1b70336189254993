/**
 * Images and their revisions: /api/v1/images... (see ./common.ts).
 */
import { IMAGE_NODE_ENTRY_PATTERN } from '../../model/image-nodes.js';
import { dateTime, deletedNameSchema, errorResponses, nameParams, nameString, nullableDateTime, nullableInt, nullableString } from './common.js';
import type { ApiType } from './index.js';

const TABLE_TYPES = ['dos', 'gpt'] as const;

/** 'all', or the node names and `group:NAME`s an image's revisions are replicated to. */
const imageNodesSchema = {
  description: "The nodes its revisions are replicated to: 'all' (the default) or a list of node names and `group:NAME` (every node whose node.groups has NAME).",
  anyOf: [
    { type: 'string', enum: ['all'] },
    { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', pattern: IMAGE_NODE_ENTRY_PATTERN } },
  ],
} as const;

const imageProperties = {
  name: { type: 'string' },
  createdAt: dateTime,
  revision: { ...nullableInt, description: 'The revision deploys use; null while none is ready.' },
  revisionCount: { type: 'integer', description: 'Revisions kept, pending ones among them.' },
  pending: { type: 'integer', description: 'Revisions waiting for approval.' },
  sizeBytes: { type: 'integer', description: 'Bytes stored (compressed streams).' },
  diskBytes: { type: 'integer', description: 'Size of the disk it was captured from.' },
  tableType: { type: 'string', enum: TABLE_TYPES },
  partitions: { type: 'integer' },
  sourceMac: nullableString,
  taskId: nullableInt,
  manifestSha256: { type: 'string' },
  protected: { type: 'boolean', description: 'Capture tasks into it are refused (deploys, rollback and approval go on).' },
  nodes: imageNodesSchema,
} as const;

const imageRequired = ['name', 'createdAt', 'revision', 'revisionCount', 'pending', 'sizeBytes', 'diskBytes', 'tableType', 'partitions', 'sourceMac', 'taskId', 'manifestSha256', 'protected', 'nodes'] as const;

/** An image as lists show it: the current revision's facts (or the newest revision's while none is current). */
export const imageSchema = {
  $id: 'Image',
  type: 'object',
  description: "An image made by capture tasks, with the current revision's facts (the newest revision's while none is current).",
  additionalProperties: false,
  required: imageRequired,
  properties: imageProperties,
} as const;
export type Image = ApiType<'Image'>;

export const imageRevisionSchema = {
  $id: 'ImageRevision',
  type: 'object',
  description: 'One capture of an image. Deploys use the current one; a pending one waits for approval.',
  additionalProperties: false,
  required: ['image', 'number', 'state', 'current', 'createdAt', 'approvedAt', 'sourceMac', 'taskId', 'sizeBytes', 'manifestSha256', 'diskBytes', 'tableType', 'partitions'],
  properties: {
    image: { type: 'string' },
    number: { type: 'integer' },
    state: { type: 'string', enum: ['ready', 'pending'] },
    current: { type: 'boolean' },
    createdAt: dateTime,
    approvedAt: nullableDateTime,
    sourceMac: nullableString,
    taskId: nullableInt,
    sizeBytes: { type: 'integer' },
    manifestSha256: { type: 'string' },
    diskBytes: { type: 'integer' },
    tableType: { type: 'string', enum: TABLE_TYPES },
    partitions: { type: 'integer' },
  },
} as const;
export type ImageRevision = ApiType<'ImageRevision'>;

export const imageDetailSchema = {
  $id: 'ImageDetail',
  type: 'object',
  description: "An image with its current revision's manifest (src/model/manifest.ts Manifest; null while none is current) and every revision.",
  additionalProperties: false,
  required: [...imageRequired, 'manifest', 'revisions', 'copies'],
  properties: {
    ...imageProperties,
    manifest: { type: ['object', 'null'], additionalProperties: true },
    revisions: { type: 'array', items: { $ref: 'ImageRevision#' } },
    copies: {
      type: 'array',
      description: "Each node's copy of each revision (replication): missing, copying (bytesDone of bytesTotal), verified (every sha256 matched on that node) or corrupt. Revisions made before copies were recorded have none.",
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['number', 'node', 'state', 'bytesDone', 'bytesTotal', 'error', 'verifiedAt', 'updatedAt'],
        properties: {
          number: { type: 'integer' },
          node: { type: 'string' },
          state: { type: 'string', enum: ['missing', 'copying', 'verified', 'corrupt'] },
          bytesDone: { type: 'integer' },
          bytesTotal: { type: 'integer' },
          error: nullableString,
          verifiedAt: nullableDateTime,
          updatedAt: dateTime,
        },
      },
    },
  },
} as const;
export type ImageDetail = ApiType<'ImageDetail'>;

export const imageListSchema = {
  $id: 'ImageList',
  type: 'object',
  additionalProperties: false,
  required: ['images'],
  properties: { images: { type: 'array', items: { $ref: 'Image#' } } },
} as const;
export type ImageList = ApiType<'ImageList'>;

export const imagesApi = {
  list: {
    tags: ['images'],
    summary: 'List images',
    response: { 200: { $ref: 'ImageList#' }, ...errorResponses },
  },
  show: {
    tags: ['images'],
    summary: 'Show an image',
    description: "Its current revision's manifest (partitions and streams) and every revision.",
    params: nameParams,
    response: { 200: { $ref: 'ImageDetail#' }, ...errorResponses },
  },
  rollback: {
    tags: ['images'],
    summary: 'Roll an image back',
    description: 'Make revision `to` current (default: the newest ready revision before the current one). Deploys that have not started write it.',
    params: nameParams,
    body: { type: ['object', 'null'], additionalProperties: false, properties: { to: { type: 'integer', minimum: 1 } } },
    response: { 200: { $ref: 'ImageRevision#' }, ...errorResponses },
  },
  approve: {
    tags: ['images'],
    summary: 'Approve a pending revision',
    description: 'It becomes the current revision.',
    params: { type: 'object', required: ['name', 'n'], properties: { name: nameString, n: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' } } },
    response: { 200: { $ref: 'ImageRevision#' }, ...errorResponses },
  },
  protect: {
    tags: ['images'],
    summary: "Change an image's settings: protection against capture, the nodes it is replicated to",
    description: "`protected`: a protected image refuses capture tasks into it (409); deploys, rollback and approval go on. 409 protecting it while a capture into it is active. `nodes`: 'all' or a list of registered node names and `group:NAME` (every node whose node.groups has NAME) its revisions are replicated to (400 for an unknown node, or a group no registered node is in).",
    params: nameParams,
    body: { type: 'object', minProperties: 1, additionalProperties: false, properties: { protected: { type: 'boolean' }, nodes: imageNodesSchema } },
    response: { 200: { $ref: 'Image#' }, ...errorResponses },
  },
  verify: {
    tags: ['images'],
    summary: "Re-hash this node's copies of an image now",
    description: "This server re-hashes its verified copies of the image's revisions against the sha256s in the store, as it does every replication.verifyIntervalHours. A mismatch deletes the bad file and marks the copy corrupt; replication then pulls it again from a node with a verified copy. Copies not verified on this node are not in `results`.",
    params: nameParams,
    response: {
      200: {
        type: 'object',
        additionalProperties: false,
        required: ['node', 'results'],
        properties: {
          node: nullableString,
          results: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['revision', 'outcome'],
              properties: { revision: { type: 'integer' }, outcome: { type: 'string', enum: ['verified', 'corrupt'] }, error: { type: 'string' } },
            },
          },
        },
      },
      ...errorResponses,
    },
  },
  remove: {
    tags: ['images'],
    summary: 'Delete an image',
    description: 'Every revision. 409 while an active task uses it.',
    params: nameParams,
    response: { 200: deletedNameSchema, ...errorResponses },
  },
} as const;
