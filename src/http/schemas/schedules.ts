/**
 * Recurring schedules: /api/v1/schedules... (see ./common.ts).
 */
import { NAME_PATTERN } from '../../model/validate.js';
import { dateTime, errorResponses, nullableDateTime, nullableInt, nullableString } from './common.js';
import type { ApiType } from './index.js';

const scheduleProperties = {
  id: { type: 'integer' },
  name: nullableString,
  cron: { type: 'string', description: '5 fields, or 6 with seconds first; the server\'s time zone.' },
  request: { $ref: 'ScheduledTaskRequest#' },
  nextRunAt: dateTime,
  lastRunAt: nullableDateTime,
  lastResult: { ...nullableString, description: 'What the last run did, in words.' },
  lastJobId: nullableInt,
  lastTaskId: nullableInt,
  createdAt: dateTime,
} as const;

const scheduleRequired = ['id', 'name', 'cron', 'request', 'nextRunAt', 'lastRunAt', 'lastResult', 'lastJobId', 'lastTaskId', 'createdAt'] as const;

export const scheduleSchema = {
  $id: 'Schedule',
  type: 'object',
  description: 'A task request submitted at each time a cron expression names.',
  additionalProperties: false,
  required: scheduleRequired,
  properties: scheduleProperties,
} as const;
export type Schedule = ApiType<'Schedule'>;

export const scheduleDetailSchema = {
  $id: 'ScheduleDetail',
  type: 'object',
  description: 'A schedule with its next few times.',
  additionalProperties: false,
  required: [...scheduleRequired, 'upcoming'],
  properties: { ...scheduleProperties, upcoming: { type: 'array', items: dateTime } },
} as const;
export type ScheduleDetail = ApiType<'ScheduleDetail'>;

export const scheduleListSchema = {
  $id: 'ScheduleList',
  type: 'object',
  additionalProperties: false,
  required: ['schedules'],
  properties: { schedules: { type: 'array', items: { $ref: 'Schedule#' } } },
} as const;
export type ScheduleList = ApiType<'ScheduleList'>;

export const deletedScheduleSchema = {
  $id: 'DeletedSchedule',
  type: 'object',
  additionalProperties: false,
  required: ['deleted'],
  properties: { deleted: { $ref: 'Schedule#' } },
} as const;
export type DeletedSchedule = ApiType<'DeletedSchedule'>;

export const newScheduleSchema = {
  $id: 'NewSchedule',
  type: 'object',
  required: ['cron', 'request'],
  additionalProperties: false,
  properties: {
    cron: { type: 'string', minLength: 1, maxLength: 128 },
    name: { type: ['string', 'null'], pattern: NAME_PATTERN },
    request: { $ref: 'ScheduledTaskRequest#' },
  },
} as const;
export type NewSchedule = ApiType<'NewSchedule'>;

const refParams = { type: 'object', required: ['ref'], properties: { ref: { type: 'string', pattern: NAME_PATTERN, description: 'The id or the name.' } } } as const;

export const schedulesApi = {
  list: {
    tags: ['schedules'],
    summary: 'List schedules',
    response: { 200: { $ref: 'ScheduleList#' }, ...errorResponses },
  },
  create: {
    tags: ['schedules'],
    summary: 'Add a schedule',
    description: '`request` is what POST /api/v1/tasks takes, without `at`: it is checked now and submitted at each time `cron` names.',
    body: { $ref: 'NewSchedule#' },
    response: { 201: { $ref: 'ScheduleDetail#' }, ...errorResponses },
  },
  show: {
    tags: ['schedules'],
    summary: 'Show a schedule',
    description: 'By id or name, with its next times.',
    params: refParams,
    response: { 200: { $ref: 'ScheduleDetail#' }, ...errorResponses },
  },
  remove: {
    tags: ['schedules'],
    summary: 'Remove a schedule',
    description: 'Its tasks and jobs stay.',
    params: refParams,
    response: { 200: { $ref: 'DeletedSchedule#' }, ...errorResponses },
  },
} as const;
