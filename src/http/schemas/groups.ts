/**
 * Host groups: /api/v1/groups... (see ./common.ts).
 */
import { dateTime, deletedNameSchema, errorResponses, macString, nameParams, nameString, nullableString } from './common.js';
import type { ApiType } from './index.js';

export const groupSchema = {
  $id: 'Group',
  type: 'object',
  description: 'A host group and its members. A task request for a group makes one task per member (a job).',
  additionalProperties: false,
  required: ['name', 'createdAt', 'members'],
  properties: {
    name: { type: 'string' },
    createdAt: dateTime,
    members: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['mac', 'name', 'addedAt'],
        properties: { mac: { type: 'string' }, name: { ...nullableString, description: "The host's name." }, addedAt: dateTime },
      },
    },
  },
} as const;
export type Group = ApiType<'Group'>;

export const groupSummarySchema = {
  $id: 'GroupSummary',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'members', 'createdAt'],
  properties: { name: { type: 'string' }, members: { type: 'integer', description: 'How many hosts.' }, createdAt: dateTime },
} as const;
export type GroupSummary = ApiType<'GroupSummary'>;

export const groupListSchema = {
  $id: 'GroupList',
  type: 'object',
  additionalProperties: false,
  required: ['groups'],
  properties: { groups: { type: 'array', items: { $ref: 'GroupSummary#' } } },
} as const;
export type GroupList = ApiType<'GroupList'>;

export const membersAddedSchema = {
  $id: 'MembersAdded',
  type: 'object',
  additionalProperties: false,
  required: ['group', 'added', 'already'],
  properties: {
    group: { $ref: 'Group#' },
    added: { type: 'array', items: { type: 'string' } },
    already: { type: 'array', items: { type: 'string' }, description: 'MACs that were members already.' },
  },
} as const;
export type MembersAdded = ApiType<'MembersAdded'>;

const macsBody = {
  type: 'object',
  required: ['macs'],
  additionalProperties: false,
  properties: { macs: { type: 'array', minItems: 1, maxItems: 10_000, items: macString } },
} as const;

export const groupsApi = {
  list: {
    tags: ['groups'],
    summary: 'List host groups',
    response: { 200: { $ref: 'GroupList#' }, ...errorResponses },
  },
  create: {
    tags: ['groups'],
    summary: 'Add a host group',
    body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: nameString } },
    response: { 201: { $ref: 'Group#' }, ...errorResponses },
  },
  show: {
    tags: ['groups'],
    summary: 'Show a host group',
    params: nameParams,
    response: { 200: { $ref: 'Group#' }, ...errorResponses },
  },
  remove: {
    tags: ['groups'],
    summary: 'Delete a host group',
    description: 'Its hosts stay. 409 while a schedule uses it.',
    params: nameParams,
    response: { 200: deletedNameSchema, ...errorResponses },
  },
  addMembers: {
    tags: ['groups'],
    summary: 'Add hosts to a group',
    description: 'All or none: 404 names every MAC that is no host, 409 the pending ones. MACs that are members already are listed in `already`.',
    params: nameParams,
    body: macsBody,
    response: { 200: { $ref: 'MembersAdded#' }, ...errorResponses },
  },
  removeMembers: {
    tags: ['groups'],
    summary: 'Remove hosts from a group',
    description: 'All or none: 404 names every MAC that is not a member.',
    params: nameParams,
    body: macsBody,
    response: { 200: { $ref: 'Group#' }, ...errorResponses },
  },
} as const;
