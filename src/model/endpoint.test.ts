import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import {
  agentIdOf,
  canonicalJson,
  ed25519PublicKey,
  EndpointProtocolError,
  packageSigningBytes,
  parseAgentIdentity,
  parsePackageManifest,
  parseWorkItem,
  parseWorkResult,
  sameMachine,
  verifySignature,
  type AgentIdentity,
  type PackageManifest,
} from './endpoint.js';

const id = (macs: string[], uuid: string | null): AgentIdentity => ({ macs, smbiosUuid: uuid, smbiosSerial: null, hostname: null, os: null, agentVersion: '1' });

test('sameMachine() tells a copied key: another UUID, or no MAC in common', () => {
  const a = id(['52:54:00:00:00:01', '52:54:00:00:00:02'], 'U1');
  assert.equal(sameMachine(a, id(['52:54:00:00:00:02'], 'u1')), true, 'one MAC in common, UUID case ignored');
  assert.equal(sameMachine(a, id(['52:54:00:00:00:01'], 'U2')), false, 'another UUID (a cloned disk)');
  assert.equal(sameMachine(a, id(['52:54:00:00:00:09'], 'U1')), false, 'no MAC in common (a namespace, a VM with a placeholder UUID)');
  assert.equal(sameMachine(id([], 'U1'), id([], 'U1')), true, 'no MACs on either side: the UUID decides');
  assert.equal(sameMachine(id([], null), id([], null)), false, 'nothing to tell it by');
});

test('canonicalJson() sorts keys at every level and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: undefined, b: 'x' }], c: null }), '{"a":[{"b":"x","d":2}],"b":1,"c":null}');
});

test('a package manifest signed by the server verifies; any change does not', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const m: PackageManifest = { format: 'fleetboot-package', version: 1, name: 'p', revision: 1, files: [{ name: 'a.sh', sha256: 'a'.repeat(64), size: 3, executable: true }], argv: ['/bin/sh', 'a.sh'], timeoutSeconds: 60, rebootCodes: [], successCodes: [0], createdAt: '2026-12-07T00:00:00.000Z' };
  const sig = sign(null, packageSigningBytes(m), privateKey).toString('base64');
  const key = ed25519PublicKey(publicKey.export({ type: 'spki', format: 'der' }).toString('base64'));
  assert.equal(verifySignature(key, packageSigningBytes(parsePackageManifest(JSON.parse(JSON.stringify(m)))), sig), true);
  assert.equal(verifySignature(key, packageSigningBytes({ ...m, argv: ['/bin/sh', 'b.sh'] }), sig), false);
  assert.equal(verifySignature(key, packageSigningBytes(m), 'not base64!'), false);
});

test('agentIdOf() is the first 32 hex digits of the key\'s sha256; a non-Ed25519 key is refused', () => {
  const pub = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  assert.match(agentIdOf(pub), /^[0-9a-f]{32}$/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  assert.throws(() => ed25519PublicKey(ec), /must be an Ed25519 key: it is ec/);
});

test('the validators name the field and the value seen', () => {
  assert.throws(() => parseAgentIdentity({ macs: ['zz'], agentVersion: '1' }), (e: Error) => e instanceof EndpointProtocolError && /identity\.macs\[0\] must be a MAC address: current value is "zz"/.test(e.message));
  assert.deepEqual(parseAgentIdentity({ macs: ['52-54-00-00-00-02', '52:54:00:00:00:01', '525400000002'], agentVersion: '1' }).macs, ['52:54:00:00:00:01', '52:54:00:00:00:02']);
  assert.throws(() => parsePackageManifest({ format: 'fleetboot-package', version: 1, name: 'p', revision: 1, files: [{ name: '../x', sha256: 'a'.repeat(64), size: 1, executable: false }], argv: ['x'], timeoutSeconds: 1, rebootCodes: [], successCodes: [0], createdAt: '2026-12-07T00:00:00Z' }), /files\[0\]\.name must be a plain file name/);
  assert.throws(() => parseWorkItem({ id: 1, kind: 'shell', cmd: 'rm -rf /' }), /work\.kind must be one of inventory, hostname, reboot, package, wake: current value is "shell"/);
  assert.throws(() => parseWorkItem({ id: 1, kind: 'hostname', name: 'a;b' }), /work\.name must be a host name/);
  assert.throws(() => parseWorkResult({ status: 'ok' }), /result\.status must be one of/);
  const r = parseWorkResult({ status: 'failed', exitCode: 3, signal: null, durationMs: 10, stdout: 'x', stderr: '', message: 'exit 3', rebootRequested: false, inventory: null });
  assert.equal(r.exitCode, 3);
});
