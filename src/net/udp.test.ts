import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultUdpBackend,
  ipv4ToNumber,
  nativeUdpUnavailableReason,
  numberToIpv4,
  openUdp,
  setUdpBusyPoll,
  udpPeer,
  type UdpBackend,
  type UdpSocket,
} from './udp.js';
import { download, startTftp } from '../../test/tftp-helpers.js';

const LOOP = ipv4ToNumber('127.0.0.1');

test('ipv4ToNumber() and numberToIpv4() convert dotted quads both ways and refuse anything else', () => {
  assert.equal(ipv4ToNumber('127.0.0.1'), 0x7f000001);
  assert.equal(ipv4ToNumber('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4ToNumber('0.0.0.0'), 0);
  assert.equal(numberToIpv4(0xc0a80a01), '192.168.10.1');
  assert.equal(numberToIpv4(0xffffffff), '255.255.255.255');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.', 'a.b.c.d', '01234.1.1.1', '::1', '1.2.3.4 ']) {
    assert.ok(Number.isNaN(ipv4ToNumber(bad)), bad);
  }
});

test('the native UDP addon is built and is the default backend (scripts/build-native.sh ran)', () => {
  assert.equal(nativeUdpUnavailableReason(), null);
  assert.equal(defaultUdpBackend(), process.env.FLEETBOOT_UDP === 'dgram' ? 'dgram' : 'native');
});

interface Got {
  data: Buffer;
  ip: number;
  port: number;
}

async function pair(backend: UdpBackend): Promise<{ a: UdpSocket; b: UdpSocket; got: Got[]; next: () => Promise<Got> }> {
  const got: Got[] = [];
  let wake: (() => void) | null = null;
  const a = await openUdp(backend, {
    address: '127.0.0.1',
    port: 0,
    onMessage(msg, ip, port) {
      got.push({ data: Buffer.from(msg), ip, port }); // the message is only valid during the call
      wake?.();
    },
    onError(err) {
      throw err;
    },
  });
  const b = await openUdp(backend, { address: '127.0.0.1', port: 0, onMessage() {}, onError() {} });
  const next = async (): Promise<Got> => {
    while (got.length === 0) await new Promise<void>((r) => (wake = r));
    return got.shift() as Got;
  };
  return { a, b, got, next };
}

for (const backend of ['native', 'dgram'] as const) {
  test(`${backend}: datagrams arrive whole with their source as numbers; head+body go out as one datagram`, async () => {
    const { a, b, next } = await pair(backend);
    try {
      assert.equal(a.backend, backend);
      assert.ok(a.port > 0 && a.port !== b.port);
      const to = udpPeer(LOOP, a.port);
      b.send(Buffer.from([0, 3, 0, 1]), Buffer.from('hello'), to);
      b.send(Buffer.from('only a head'), null, to);
      const big = randomBytes(65_000);
      b.send(big.subarray(0, 4), big.subarray(4), to);
      b.send(Buffer.alloc(0), null, to); // an empty datagram is a datagram too
      const m1 = await next();
      assert.deepEqual(m1.data, Buffer.from([0, 3, 0, 1, ...Buffer.from('hello')]));
      assert.equal(m1.ip, LOOP);
      assert.equal(m1.port, b.port);
      assert.equal((await next()).data.toString(), 'only a head');
      assert.deepEqual((await next()).data, big);
      assert.equal((await next()).data.length, 0);
      if (backend === 'native') assert.equal(b.retainsBuffers(), false); // it copies what the kernel could not take
    } finally {
      await a.close();
      await b.close();
      await a.close(); // twice is fine
    }
  });

  test(`${backend}: a burst of datagrams is delivered in order, and nothing arrives after close()`, async () => {
    const { a, b, got, next } = await pair(backend);
    try {
      const to = udpPeer(LOOP, a.port);
      for (let i = 0; i < 200; i++) b.send(Buffer.from([i >> 8, i & 255]), null, to);
      for (let i = 0; i < 200; i++) assert.equal((await next()).data.readUInt16BE(0), i);
      await a.close();
      b.send(Buffer.from('late'), null, to);
      b.send(Buffer.from('late'), null, to); // after close: nobody listens, sends do not throw
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(got.length, 0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test(`${backend}: binding a port in use fails with EADDRINUSE, and a bad address with a TypeError`, async () => {
    const { a, b } = await pair(backend);
    try {
      await assert.rejects(openUdp(backend, { address: '127.0.0.1', port: a.port, onMessage() {}, onError() {} }), { code: 'EADDRINUSE' });
      await assert.rejects(openUdp(backend, { address: 'localhost', port: 0, onMessage() {}, onError() {} }), TypeError);
    } finally {
      await a.close();
      await b.close();
    }
  });
}

test('native: a send after close() is ignored and busy polling can be switched on and off', async () => {
  const { a, b, next } = await pair('native');
  try {
    assert.equal(setUdpBusyPoll(50), true);
    const to = udpPeer(LOOP, a.port);
    b.send(Buffer.from('x'), null, to);
    assert.equal((await next()).data.toString(), 'x');
    assert.equal(setUdpBusyPoll(0), true);
    assert.throws(() => setUdpBusyPoll(-1), RangeError);
    await b.close();
    b.send(Buffer.from('y'), null, to);
  } finally {
    setUdpBusyPoll(0);
    await a.close();
    await b.close();
  }
});

test('TFTP with tftp.busyPollMicros on (native) serves files byte for byte, and the process can still exit', async () => {
  const root = await mkdtemp(join(tmpdir(), 'fb-udp-'));
  const data = randomBytes(3_000_000);
  await writeFile(join(root, 'f'), data);
  const svc = await startTftp(root, { busyPollMicros: 50 });
  try {
    const r = await download(svc.port, 'f', { options: [{ name: 'blksize', value: '1468' }] });
    assert.deepEqual(r.data, data);
  } finally {
    await svc.close();
    await rm(root, { recursive: true, force: true });
  }
});
