/**
 * What the server saw of machines' boots: /api/v1/hosts/:mac/timeline and /why (see ./common.ts).
 */
import { BOOT_EVENT_KINDS } from '../../model/boot-event.js';
import { dateTime, errorResponses, idString, limitString, macParams, nullableString } from './common.js';
import type { ApiType } from './index.js';

export const bootEventSchema = {
  $id: 'BootEvent',
  type: 'object',
  description: "One step of a machine's boot as the server saw it: a DHCP answer, a TFTP or HTTP fetch, a boot decision, a task's start, progress or end.",
  additionalProperties: false,
  required: ['id', 'at', 'kind', 'mac', 'ip', 'summary', 'detail'],
  properties: {
    id: { type: 'integer' },
    at: dateTime,
    kind: { type: 'string', enum: BOOT_EVENT_KINDS },
    mac: nullableString,
    ip: nullableString,
    summary: { type: 'string', description: 'One line, for people.' },
    detail: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] }, description: 'What the step was (file, reason, state...), for programs.' },
  },
} as const;
export type BootEvent = ApiType<'BootEvent'>;

export const bootTimelineSchema = {
  $id: 'BootTimeline',
  type: 'object',
  additionalProperties: false,
  required: ['mac', 'events'],
  properties: { mac: { type: 'string' }, events: { type: 'array', items: { $ref: 'BootEvent#' } } },
} as const;
export type BootTimeline = ApiType<'BootTimeline'>;

export const bootDiagnosisSchema = {
  $id: 'BootDiagnosis',
  type: 'object',
  additionalProperties: false,
  required: ['mac', 'stage', 'completed', 'verdict', 'next', 'steps'],
  properties: {
    mac: { type: 'string' },
    stage: { type: 'string', enum: ['none', 'offered', 'boot-file', 'script', 'decision', 'task'], description: 'The furthest step its last boot reached.' },
    completed: { type: 'boolean', description: 'The boot went where it was sent (an entry, the menu, the local disk, a finished task).' },
    verdict: { type: 'string', description: 'One line: how far it got.' },
    next: { ...nullableString, description: 'What was expected next and what usually stops it; null when it completed.' },
    steps: { type: 'array', items: { $ref: 'BootEvent#' }, description: "The last attempt's steps, oldest first." },
  },
} as const;
export type BootDiagnosis = ApiType<'BootDiagnosis'>;

export const timelineApi = {
  timeline: {
    tags: ['timeline'],
    summary: "A machine's boot timeline",
    description: 'Every step the server recorded for this MAC (a host or not), oldest first: the newest `limit` (default 200); `before`: steps before that id.',
    params: macParams,
    querystring: { type: 'object', additionalProperties: false, properties: { limit: limitString, before: idString } },
    response: { 200: { $ref: 'BootTimeline#' }, ...errorResponses },
  },
  why: {
    tags: ['timeline'],
    summary: 'Why a machine did not boot',
    description: 'How far its last boot got, and what was expected next.',
    params: macParams,
    response: { 200: { $ref: 'BootDiagnosis#' }, ...errorResponses },
  },
} as const;
