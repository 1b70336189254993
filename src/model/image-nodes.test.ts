import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IMAGE_NODE_ENTRY_PATTERN, isAssigned, parseImageNodeEntry } from './image-nodes.js';

test('parseImageNodeEntry(): a node name, or group: and a group name (node names\' syntax); anything else is null', () => {
  assert.deepEqual(parseImageNodeEntry('pxe-a'), { kind: 'node', name: 'pxe-a' });
  assert.deepEqual(parseImageNodeEntry('group:building-a'), { kind: 'group', name: 'building-a' });
  for (const bad of ['', 'group:', 'group:-x', 'group:a b', 'group:group:a', 'Group:a', 'a:b', 'bad name', `group:${'x'.repeat(65)}`]) {
    assert.equal(parseImageNodeEntry(bad), null, bad);
  }
  // The HTTP schema's pattern says the same.
  const re = new RegExp(IMAGE_NODE_ENTRY_PATTERN);
  for (const s of ['pxe-a', 'group:building-a', '', 'group:', 'group:a b', 'a:b']) assert.equal(re.test(s), parseImageNodeEntry(s) !== null, s);
});

test('isAssigned(): every node for all; else a node listed by name, or one of its groups listed', () => {
  const a = { name: 'pxe-a', groups: ['building-a', 'lab'] };
  const c = { name: 'pxe-c', groups: [] };
  assert.equal(isAssigned('all', c), true);
  assert.equal(isAssigned(['pxe-a'], a), true);
  assert.equal(isAssigned(['pxe-a'], c), false);
  assert.equal(isAssigned(['group:lab'], a), true);
  assert.equal(isAssigned(['group:lab'], c), false);
  assert.equal(isAssigned(['pxe-c', 'group:building-b'], a), false);
  assert.equal(isAssigned(['pxe-c', 'group:building-b'], c), true);
  // A group entry never matches a node of that name, nor a node entry a group.
  assert.equal(isAssigned(['group:pxe-c'], c), false);
  assert.equal(isAssigned(['lab'], a), false);
});
