import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseStreamsNode, type SourceNode } from './streams-source.js';

const node = (name: string, subnets: string[], httpUrl: string | null = `http://${name}:8080`): SourceNode => ({ name, subnets, httpUrl, httpsUrl: null });
const A = node('a', ['10.0.0.0/24']);
const B = node('b', ['10.1.0.0/24']);
const C = node('c', ['10.1.0.0/16']);
const D = node('d', []);
const pick = (ip: string, self: string, live: SourceNode[], holders: string[]) => chooseStreamsNode(ip, self, live, new Set(holders));

test('chooseStreamsNode() picks the node serving the client when it holds a verified copy', () => {
  assert.deepEqual(pick('10.1.0.7', 'a', [A, B, C], ['a', 'b', 'c']), { node: 'b', reason: 'subnet', url: 'http://b:8080' });
  // Its own subnet: this node, no URL (the agent's control URL).
  assert.deepEqual(pick('10.0.0.7', 'a', [A, B], ['a', 'b']), { node: 'a', reason: 'subnet', url: null });
});

test('chooseStreamsNode() falls back to this node when the serving node lacks the copy or is down', () => {
  assert.deepEqual(pick('10.1.0.7', 'a', [A, B], ['a']), { node: 'a', reason: 'self', url: null });
  // b down: not in the live list; c (10.1.0.0/16) serves the client then.
  assert.deepEqual(pick('10.1.0.7', 'a', [A, C], ['a', 'b', 'c']), { node: 'c', reason: 'subnet', url: 'http://c:8080' });
  assert.deepEqual(pick('10.1.0.7', 'a', [A], ['a', 'b']), { node: 'a', reason: 'self', url: null });
});

test('chooseStreamsNode() otherwise takes a live holder: subnets containing the client first, then by name', () => {
  assert.deepEqual(pick('10.1.0.7', 'a', [A, B, C, D], ['c', 'd']), { node: 'c', reason: 'fallback', url: 'http://c:8080' });
  assert.deepEqual(pick('10.9.0.7', 'a', [A, D, node('e', [])], ['e', 'd']), { node: 'd', reason: 'fallback', url: 'http://d:8080' });
  // A holder without a URL cannot be read from.
  assert.deepEqual(pick('10.9.0.7', 'a', [A, node('d', [], null), node('e', [])], ['d', 'e']), { node: 'e', reason: 'fallback', url: 'http://e:8080' });
  // Nobody live holds it: null (this node answers, and refuses).
  assert.equal(pick('10.1.0.7', 'a', [A, B], ['z']), null);
  // Not IPv4: no subnet matches; this node when it holds it.
  assert.deepEqual(pick('fe80::1', 'a', [A, B], ['a', 'b']), { node: 'a', reason: 'self', url: null });
});
