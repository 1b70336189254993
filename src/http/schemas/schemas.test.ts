import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task as StoredTask } from '../../store/index.js';
import { taskView } from '../routes/api-tasks.js';
import * as schemas from './index.js';
import { sharedSchemas, taskSchema } from './index.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every subschema of `v` (objects, depth first), with where it is. */
function* subschemas(v: unknown, at: string): Generator<[string, Record<string, unknown>]> {
  if (Array.isArray(v)) for (const [i, x] of v.entries()) yield* subschemas(x, `${at}[${i}]`);
  else if (isObject(v)) {
    yield [at, v];
    for (const [k, x] of Object.entries(v)) yield* subschemas(x, `${at}.${k}`);
  }
}

const ids = new Set<string>(sharedSchemas.map((s) => s.$id));
/** The route schemas: every exported `*Api` object's members. */
const routeSchemas = Object.entries(schemas).filter(([name, v]) => name.endsWith('Api') && isObject(v));

test('sharedSchemas: $ids are unique and every $ref, in them and in the route schemas, names one of them', () => {
  assert.equal(ids.size, sharedSchemas.length, 'a $id used twice');
  const dangling: string[] = [];
  for (const [where, root] of [...sharedSchemas.map((s) => [s.$id, s] as const), ...routeSchemas]) {
    for (const [at, s] of subschemas(root, where)) {
      const ref = s['$ref'];
      if (ref === undefined) continue;
      if (typeof ref !== 'string' || !ref.endsWith('#') || !ids.has(ref.slice(0, -1))) dangling.push(`${at}: ${JSON.stringify(ref)}`);
    }
  }
  assert.deepEqual(dangling, []);
  assert.ok(routeSchemas.length >= 15, `${routeSchemas.length} *Api objects`);
});

test('answers are closed and exact: every object with properties has additionalProperties false and requires only what it declares', () => {
  const problems: string[] = [];
  const answers = [...sharedSchemas.map((s) => [s.$id, s] as const), ...routeSchemas.flatMap(([api, v]) => Object.entries(v as Record<string, unknown>).map(([route, r]) => [`${api}.${route}.response`, isObject(r) ? r['response'] : undefined] as const))];
  for (const [where, root] of answers) {
    for (const [at, s] of subschemas(root, where)) {
      const props = s['properties'];
      if (!isObject(props) || at.endsWith('.properties')) continue;
      // Request bodies and query strings are closed too; answers must be (the serialiser would drop the rest silently).
      if (s['additionalProperties'] !== false) problems.push(`${at}: additionalProperties is ${JSON.stringify(s['additionalProperties'])}`);
      const required = s['required'];
      for (const r of Array.isArray(required) ? required : []) if (typeof r !== 'string' || !(r in props)) problems.push(`${at}: requires ${JSON.stringify(r)}, which it does not declare`);
    }
  }
  assert.deepEqual(problems, []);
});

test('taskView() shows exactly the properties of the Task schema: not the agent identity or the multicast receiver id', () => {
  const stored: StoredTask = {
    id: 7,
    type: 'deploy',
    mac: '52:54:00:00:00:07',
    hostName: null,
    image: 'golden',
    state: 'running',
    phase: 'transfer',
    bytesDone: 1,
    bytesTotal: 2,
    rateBps: null,
    etaSeconds: null,
    partition: 1,
    message: null,
    error: null,
    attempts: 1,
    options: { disk: null, table: 'keep' },
    retryOf: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    startedAt: null,
    finishedAt: null,
    lastSeenAt: null,
    revision: 2,
    requestedRevision: null,
    tokenIp: '10.0.0.7',
    identity: '{"smbios":{}}',
    jobId: 3,
    startAt: null,
    wake: false,
    wakeRounds: 0,
    wokenAt: null,
    reboot: false,
    multicastId: 4,
    multicastReceiver: '0123456789abcdef',
  };
  const shown = taskView(stored);
  assert.deepEqual(Object.keys(shown).sort(), Object.keys(taskSchema.properties).sort());
  assert.deepEqual([...taskSchema.required].sort(), Object.keys(taskSchema.properties).sort(), 'every property of a task is always there');
  assert.equal('identity' in shown || 'multicastReceiver' in shown, false);
});
