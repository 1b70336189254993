import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPacket, decodePacket } from './packet.js';
import { DhcpDecodeError } from './errors.js';
import {
  clientArch, clientGuid, clientNdi, getOption, ipxeOptions, maxMessageSize, messageType, optionName, parameterRequestList,
  relayAgentInfo, setOption, userClass, vendorClassId, bootfileName, messageTypeName,
} from './options.js';
import { decodePxeOptions, encodePxeOptions } from './pxe.js';
import { loadFixture } from './testdata/fixtures.js';

test('typed readers read a captured iPXE DISCOVER', () => {
  const p = decodePacket(loadFixture('seabios-ipxe-01-ipxe-discover-67'));
  assert.equal(messageType(p), 1);
  assert.equal(vendorClassId(p), 'PXEClient:Arch:00000:UNDI:002001');
  assert.deepEqual(clientArch(p), [0]);
  assert.deepEqual(clientNdi(p), { type: 1, major: 2, minor: 1 });
  assert.deepEqual(userClass(p), ['iPXE']);
  assert.equal(maxMessageSize(p), 1472);
  assert.ok(parameterRequestList(p)?.includes(67));
  assert.equal(clientGuid(p)?.type, 0);
  assert.ok(ipxeOptions(p)?.some((s) => s.code === 177));
});

test('userClass() reads RFC 3004 length-prefixed lists and iPXE plain text', () => {
  const p = createPacket();
  setOption(p, 77, Buffer.from([4, ...Buffer.from('iPXE'), 3, ...Buffer.from('abc')]));
  assert.deepEqual(userClass(p), ['iPXE', 'abc']);
  setOption(p, 77, Buffer.from('iPXE'));
  assert.deepEqual(userClass(p), ['iPXE']);
  setOption(p, 77, Buffer.from([0, 1]));
  assert.deepEqual(userClass(p), ['\x00\x01']);
});

test('readers throw DhcpDecodeError for malformed values', () => {
  const p = createPacket();
  setOption(p, 93, Buffer.from([0, 7, 1]));
  assert.throws(() => clientArch(p), DhcpDecodeError);
  setOption(p, 53, Buffer.from([1, 2]));
  assert.throws(() => messageType(p), /option 53 \(message-type\) must be 1 byte/);
  setOption(p, 82, Buffer.from([1, 9, 0]));
  assert.throws(() => relayAgentInfo(p), DhcpDecodeError);
});

test('bootfileName() drops a NUL terminator; getOption() concatenates repeated options', () => {
  const p = createPacket();
  setOption(p, 67, Buffer.from('snponly.efi\0'));
  assert.equal(bootfileName(p), 'snponly.efi');
  p.options.push({ code: 60, data: Buffer.from('PXE') }, { code: 60, data: Buffer.from('Client') });
  assert.equal(getOption(p, 60)?.toString(), 'PXEClient');
});

test('optionName() and messageTypeName() name known and unknown codes', () => {
  assert.equal(optionName(93), 'client-arch');
  assert.equal(optionName(250), 'option-250');
  assert.equal(messageTypeName(3), 'REQUEST');
  assert.equal(messageTypeName(undefined), 'BOOTP');
});

test('encodePxeOptions() and decodePxeOptions() round-trip a menu', () => {
  const o = {
    discoveryControl: 3,
    bootServers: [{ type: 0x8000, addresses: ['10.0.0.1'] }],
    bootMenu: [{ type: 0x8000, description: 'Boot from network' }, { type: 0, description: 'Boot from local disk' }],
    menuPrompt: { timeout: 5, prompt: 'Press F8' },
    bootItem: { type: 0x8000, layer: 0 },
  };
  const b = encodePxeOptions(o);
  assert.equal(b[b.length - 1], 255);
  assert.deepEqual(decodePxeOptions(b), { ...o, other: [] });
  assert.throws(() => encodePxeOptions({ bootMenu: Array.from({ length: 20 }, () => ({ type: 1, description: 'x'.repeat(20) })) }), RangeError);
});

test('decodePxeOptions() rejects malformed sub-options', () => {
  assert.throws(() => decodePxeOptions(Buffer.from([71, 3, 0, 0, 0])), /sub-option 71 \(boot item\) must be 4 bytes/);
  assert.throws(() => decodePxeOptions(Buffer.from([8, 3, 0x80, 0, 2])), /lists 2 address/);
  assert.throws(() => decodePxeOptions(Buffer.from([9, 4, 0x80, 0, 9, 65])), /declares 9 bytes/);
  assert.throws(() => decodePxeOptions(Buffer.from([6, 9])), DhcpDecodeError);
});
