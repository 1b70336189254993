import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePacket, encodePacket } from './packet.js';
import { DhcpDecodeError } from './errors.js';
import {
  clientArch, clientGuid, clientIdentifier, clientNdi, ipxeOptions, leaseTime, maxMessageSize, messageType,
  parameterRequestList, relayAgentInfo, requestedIp, serverIdentifier, userClass, vendorClassId, bootfileName, tftpServerName,
} from './options.js';
import { decodePxeOptions } from './pxe.js';
import { describePacket } from './describe.js';
import { loadFixtures } from './testdata/fixtures.js';

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decode and read everything a server reads; returns normally or throws. */
function exercise(b: Buffer): void {
  const p = decodePacket(b);
  for (const read of [clientArch, clientGuid, clientIdentifier, clientNdi, ipxeOptions, leaseTime, maxMessageSize, messageType,
    parameterRequestList, relayAgentInfo, requestedIp, serverIdentifier, userClass, vendorClassId, bootfileName, tftpServerName]) {
    try {
      read(p);
    } catch (e) {
      if (!(e instanceof DhcpDecodeError)) throw e;
    }
  }
  for (const o of p.options) if (o.code === 43) try { decodePxeOptions(o.data); } catch (e) { if (!(e instanceof DhcpDecodeError)) throw e; }
  describePacket(p);
  // whatever decodes must encode again
  decodePacket(encodePacket(p));
}

function onlyDecodeErrors(b: Buffer, what: string): void {
  try {
    exercise(b);
  } catch (e) {
    if (!(e instanceof DhcpDecodeError)) assert.fail(`${what}: threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} for ${b.toString('hex')}`);
  }
}

test('decodePacket() throws nothing but DhcpDecodeError on random bytes', () => {
  const r = rng(1);
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(r() * 700);
    const b = Buffer.alloc(len);
    for (let k = 0; k < len; k++) b[k] = Math.floor(r() * 256);
    if (len >= 240 && r() < 0.7) b.writeUInt32BE(0x63825363, 236); // get past the cookie check most of the time
    onlyDecodeErrors(b, `random #${i}`);
  }
});

test('decodePacket() throws nothing but DhcpDecodeError on mutated captures', () => {
  const r = rng(2);
  const fixtures = loadFixtures();
  for (let i = 0; i < 6000; i++) {
    const f = fixtures[i % fixtures.length];
    assert.ok(f);
    const b = Buffer.from(f.bytes);
    const flips = 1 + Math.floor(r() * 8);
    for (let k = 0; k < flips; k++) {
      // mostly hit the options area, where the lengths live
      const at = r() < 0.8 ? 240 + Math.floor(r() * (b.length - 240)) : Math.floor(r() * b.length);
      b[at] = Math.floor(r() * 256);
    }
    const cut = r() < 0.2 ? b.subarray(0, Math.floor(r() * b.length)) : b;
    onlyDecodeErrors(cut, `${f.name} mutation #${i}`);
  }
});
