/**
 * Hosts: /api/v1/hosts... (see ./common.ts).
 */
import type { FromSchema } from 'json-schema-to-ts';
import { HOST_SORT_KEYS, HOST_STATUSES, IMPORT_MAX } from '../../model/host.js';
import { MACS_MAX } from '../../model/task-request.js';
import { NAME_PATTERN } from '../../model/validate.js';
import { dateTime, deletedNameSchema, errorResponses, macParams, macString, nameString, nullableInt, nullableString } from './common.js';
import type { ApiType } from './index.js';

const hostProperties = {
  mac: { type: 'string', description: 'Lower case with colons.' },
  name: nullableString,
  entry: { ...nullableString, description: 'The boot entry it boots, or null: the menu, then the local disk.' },
  ip: { ...nullableString, description: 'Its reserved IPv4 address (DHCP server mode), or null.' },
  status: { type: 'string', enum: HOST_STATUSES, description: 'pending: registered from the boot menu, waiting for approval (nothing can be assigned to it).' },
  createdAt: dateTime,
  updatedAt: dateTime,
} as const;

const hostRequired = ['mac', 'name', 'entry', 'ip', 'status', 'createdAt', 'updatedAt'] as const;

export const hostSchema = {
  $id: 'Host',
  type: 'object',
  description: 'A machine known by its MAC address: its name, the entry it boots and its reserved address.',
  additionalProperties: false,
  required: hostRequired,
  properties: hostProperties,
} as const;
export type Host = ApiType<'Host'>;

const groupNames = { type: 'array', items: { type: 'string' }, description: 'The groups it is a member of, by name.' } as const;

/** A host in the list: with the names of its groups. */
export const hostListItemSchema = {
  $id: 'HostListItem',
  type: 'object',
  description: 'A host, with the names of its groups.',
  additionalProperties: false,
  required: [...hostRequired, 'groups'],
  properties: { ...hostProperties, groups: groupNames },
} as const;
export type HostListItem = ApiType<'HostListItem'>;

/** One host with what imaging knows of it: the inventory as the agent sent it, and its active task. */
export const hostDetailSchema = {
  $id: 'HostDetail',
  type: 'object',
  description: 'A host with its groups, its inventory of record (as the agent sent it: src/model/manifest.ts Inventory) and its active task.',
  additionalProperties: false,
  required: [...hostRequired, 'groups', 'inventory', 'activeTask'],
  properties: {
    ...hostProperties,
    groups: groupNames,
    inventory: { type: ['object', 'null'], additionalProperties: true },
    activeTask: { anyOf: [{ $ref: 'Task#' }, { type: 'null' }] },
  },
} as const;
export type HostDetail = ApiType<'HostDetail'>;

export const hostListSchema = {
  $id: 'HostList',
  type: 'object',
  description: 'A page of the host list: the hosts, how many match in all, and the page asked for (limit null: every match).',
  additionalProperties: false,
  required: ['hosts', 'total', 'offset', 'limit'],
  properties: {
    hosts: { type: 'array', items: { $ref: 'HostListItem#' } },
    total: { type: 'integer' },
    offset: { type: 'integer' },
    limit: nullableInt,
  },
} as const;
export type HostList = ApiType<'HostList'>;

const nullableName = { anyOf: [{ type: 'string', pattern: NAME_PATTERN }, { type: 'null' }] } as const;
// Checked by the repository (isReservableIPv4), which says what is wrong in words.
const nullableIp = { type: ['string', 'null'], maxLength: 15 } as const;

/** The hosts an entry was assigned to (POST /api/v1/hosts/entry). */
export const assignedHostsSchema = {
  $id: 'AssignedHosts',
  type: 'object',
  additionalProperties: false,
  required: ['hosts'],
  properties: { hosts: { type: 'array', items: { $ref: 'Host#' } } },
} as const;
export type AssignedHosts = ApiType<'AssignedHosts'>;

const imported = {
  type: 'object',
  additionalProperties: false,
  required: ['added', 'skipped', 'groupsCreated'],
  properties: {
    added: { type: 'integer' },
    skipped: { type: 'array', items: { type: 'string' }, description: 'MACs that were hosts already (skipExisting).' },
    groupsCreated: { type: 'array', items: { type: 'string' } },
  },
} as const;
export type ImportedHosts = FromSchema<typeof imported>;

const hostRef = { $ref: 'Host#' } as const;

export const hostsApi = {
  list: {
    tags: ['hosts'],
    summary: 'List hosts',
    description:
      '`status=pending`: the inbox of machines registered from the boot menu, `status=approved`: the others. ' +
      '`q`: part of a name, a MAC in any spelling, an address, a serial or a group; `group`: its members. ' +
      'Sorted by `sort` (default mac), a page of `limit` (1-1000; without it, every match) from `offset`; `total` counts every match.',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        status: { type: 'string', enum: HOST_STATUSES },
        q: { type: 'string', maxLength: 100 },
        group: nameString,
        sort: { type: 'string', enum: HOST_SORT_KEYS },
        order: { type: 'string', enum: ['asc', 'desc'] },
        offset: { type: 'string', pattern: '^(0|[1-9][0-9]{0,8})$' },
        limit: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$' },
      },
    },
    response: { 200: { $ref: 'HostList#' }, ...errorResponses },
  },
  create: {
    tags: ['hosts'],
    summary: 'Add a host',
    description: '`ip` reserves an address for it (DHCP server mode); 409 when another host or the configuration (dhcp.reservations) has it.',
    body: {
      type: 'object',
      required: ['mac'],
      additionalProperties: false,
      properties: { mac: macString, name: nullableName, entry: nullableName, ip: nullableIp },
    },
    response: { 201: hostRef, ...errorResponses },
  },
  import: {
    tags: ['hosts'],
    summary: 'Import hosts',
    description:
      `Add up to ${IMPORT_MAX} hosts at once, all or none: every bad row is named by its number; a MAC that is a host already is a 409 unless \`skipExisting\`. Missing groups are made. (fleetboot host import FILE.csv)`,
    body: {
      type: 'object',
      required: ['hosts'],
      additionalProperties: false,
      properties: {
        hosts: {
          type: 'array',
          minItems: 1,
          maxItems: IMPORT_MAX,
          items: {
            type: 'object',
            required: ['mac'],
            additionalProperties: false,
            properties: {
              mac: { type: 'string', maxLength: 32 },
              name: { type: ['string', 'null'], maxLength: 64 },
              ip: nullableIp,
              entry: { type: ['string', 'null'], maxLength: 64 },
              groups: { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 64 } },
            },
          },
        },
        skipExisting: { type: 'boolean' },
      },
    },
    response: { 201: imported, ...errorResponses },
  },
  assignEntry: {
    tags: ['hosts'],
    summary: 'Assign a boot entry to many hosts',
    description: `One entry (null: none) for up to ${MACS_MAX} hosts, all or none: 404 names every MAC that is no host.`,
    body: {
      type: 'object',
      required: ['macs', 'entry'],
      additionalProperties: false,
      properties: { macs: { type: 'array', minItems: 1, maxItems: MACS_MAX, items: macString }, entry: nullableName },
    },
    response: { 200: { $ref: 'AssignedHosts#' }, ...errorResponses },
  },
  show: {
    tags: ['hosts'],
    summary: 'Show a host',
    description: 'The host (any usual MAC spelling), its groups, its inventory of record and its active task.',
    params: macParams,
    response: { 200: { $ref: 'HostDetail#' }, ...errorResponses },
  },
  update: {
    tags: ['hosts'],
    summary: 'Change a host',
    description: 'Assign or unassign a boot entry, rename, reserve or unreserve an address (null removes each).',
    params: macParams,
    body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { entry: nullableName, name: nullableName, ip: nullableIp } },
    response: { 200: hostRef, ...errorResponses },
  },
  remove: {
    tags: ['hosts'],
    summary: 'Delete a host',
    params: macParams,
    response: { 200: deletedNameSchema, ...errorResponses },
  },
  approve: {
    tags: ['hosts'],
    summary: 'Approve a pending host',
    description: 'A machine registered from the boot menu becomes a host that entries and tasks can be given to.',
    params: macParams,
    body: { type: ['object', 'null'], additionalProperties: false, properties: { name: nullableName } },
    response: { 200: hostRef, ...errorResponses },
  },
  reject: {
    tags: ['hosts'],
    summary: 'Reject a pending host',
    description: 'It is removed; the machine may register again.',
    params: macParams,
    response: { 200: { type: 'object', additionalProperties: false, required: ['rejected'], properties: { rejected: { type: 'string' } } }, ...errorResponses },
  },
  forgetInventory: {
    tags: ['hosts'],
    summary: "Forget a host's inventory",
    description: 'After a hardware change: imaging tasks compare the machine with its inventory of record.',
    params: macParams,
    response: { 200: deletedNameSchema, ...errorResponses },
  },
} as const;
