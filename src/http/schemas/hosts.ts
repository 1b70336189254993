/**
 * Hosts: /api/v1/hosts... (see ./common.ts).
 */
import { NAME_PATTERN } from '../../model/validate.js';
import { dateTime, deletedNameSchema, errorResponses, macParams, macString, nullableString } from './common.js';
import type { ApiType } from './index.js';

export const HOST_STATUSES = ['approved', 'pending'] as const;

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

/** One host with what imaging knows of it: the inventory as the agent sent it, and its active task. */
export const hostDetailSchema = {
  $id: 'HostDetail',
  type: 'object',
  description: 'A host with its inventory of record (as the agent sent it: src/model/manifest.ts Inventory) and its active task.',
  additionalProperties: false,
  required: [...hostRequired, 'inventory', 'activeTask'],
  properties: {
    ...hostProperties,
    inventory: { type: ['object', 'null'], additionalProperties: true },
    activeTask: { anyOf: [{ $ref: 'Task#' }, { type: 'null' }] },
  },
} as const;
export type HostDetail = ApiType<'HostDetail'>;

export const hostListSchema = {
  $id: 'HostList',
  type: 'object',
  additionalProperties: false,
  required: ['hosts'],
  properties: { hosts: { type: 'array', items: { $ref: 'Host#' } } },
} as const;
export type HostList = ApiType<'HostList'>;

const nullableName = { anyOf: [{ type: 'string', pattern: NAME_PATTERN }, { type: 'null' }] } as const;
// Checked by the repository (isReservableIPv4), which says what is wrong in words.
const nullableIp = { type: ['string', 'null'], maxLength: 15 } as const;

const hostRef = { $ref: 'Host#' } as const;

export const hostsApi = {
  list: {
    tags: ['hosts'],
    summary: 'List hosts',
    description: 'Every host; `status=pending`: the inbox of machines registered from the boot menu, `status=approved`: the others.',
    querystring: { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: HOST_STATUSES } } },
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
  show: {
    tags: ['hosts'],
    summary: 'Show a host',
    description: 'The host (any usual MAC spelling), its inventory of record and its active task.',
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
