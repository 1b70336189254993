/**
 * Users: /api/v1/users... (see ./common.ts).
 */
import { roleSchema } from './auth.js';
import { dateTime, errorResponses, nameParams, nameString, nullableDateTime } from './common.js';
import type { ApiType } from './index.js';

export const userSchema = {
  $id: 'User',
  type: 'object',
  description: 'A person who logs in. Roles: viewer reads, operator also runs the fleet, admin also manages users and settings and deletes.',
  additionalProperties: false,
  required: ['name', 'role', 'createdAt', 'updatedAt', 'disabledAt', 'mustChangePassword'],
  properties: {
    name: { type: 'string' },
    role: roleSchema,
    createdAt: dateTime,
    updatedAt: dateTime,
    disabledAt: { ...nullableDateTime, description: 'null: enabled.' },
    mustChangePassword: { type: 'boolean', description: 'The password was generated (shown once): a session can do nothing but change it.' },
  },
} as const;
export type User = ApiType<'User'>;

export const userListSchema = {
  $id: 'UserList',
  type: 'object',
  additionalProperties: false,
  required: ['users'],
  properties: { users: { type: 'array', items: { $ref: 'User#' } } },
} as const;
export type UserList = ApiType<'UserList'>;

export const userAndPasswordSchema = {
  $id: 'UserAndPassword',
  type: 'object',
  additionalProperties: false,
  required: ['user'],
  properties: { user: { $ref: 'User#' }, password: { type: 'string', description: 'A generated password, shown this once.' } },
} as const;
export type UserAndPassword = ApiType<'UserAndPassword'>;

export const deletedUserSchema = {
  $id: 'DeletedUser',
  type: 'object',
  additionalProperties: false,
  required: ['deleted'],
  properties: { deleted: { $ref: 'User#' } },
} as const;
export type DeletedUser = ApiType<'DeletedUser'>;

// Length and content are checked by the policy (src/model/password.ts), whose message says what is wrong.
const passwordSchema = { type: 'string', maxLength: 4096 } as const;
const userRef = { $ref: 'User#' } as const;

export const usersApi = {
  list: {
    tags: ['users'],
    summary: 'List users',
    response: { 200: { $ref: 'UserList#' }, ...errorResponses },
  },
  create: {
    tags: ['users'],
    summary: 'Add a user',
    description: 'Without `password` one is generated, answered this once, and must be changed at the first login.',
    body: { type: 'object', required: ['name', 'role'], additionalProperties: false, properties: { name: nameString, role: roleSchema, password: passwordSchema } },
    response: { 201: { $ref: 'UserAndPassword#' }, ...errorResponses },
  },
  show: {
    tags: ['users'],
    summary: 'Show a user',
    params: nameParams,
    response: { 200: userRef, ...errorResponses },
  },
  update: {
    tags: ['users'],
    summary: "Change a user's role, or disable or enable it",
    description: 'Disabling ends its sessions. 409 for the last enabled admin.',
    params: nameParams,
    body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { role: roleSchema, disabled: { type: 'boolean' } } },
    response: { 200: userRef, ...errorResponses },
  },
  remove: {
    tags: ['users'],
    summary: 'Delete a user',
    description: 'With its sessions and API tokens. 409 for the last enabled admin.',
    params: nameParams,
    response: { 200: { $ref: 'DeletedUser#' }, ...errorResponses },
  },
  password: {
    tags: ['users'],
    summary: 'Set a password',
    description:
      "One's own (any role): `currentPassword` and `password` are required. An admin, for another user: `password` is optional (without it one is generated, answered this once, and must be changed at the next login). The user's other sessions end.",
    params: nameParams,
    body: { type: ['object', 'null'], additionalProperties: false, properties: { password: passwordSchema, currentPassword: passwordSchema } },
    response: { 200: { $ref: 'UserAndPassword#' }, ...errorResponses },
  },
} as const;
