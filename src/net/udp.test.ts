import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  defaultUdpBackend,
  ipv4ToNumber,
  nativeUdpUnavailableReason,
  numberToIpv4,
  openUdp,
  openUdpForPeer,
  setUdpBusyPoll,
  udpPeer,
  type UdpBackend,
  type UdpSocket,
} from './udp.js';
import { waitFor } from '../../test/wait.js';
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
      await new Promise((r) => setTimeout(r, 50)); // the test: time for a late datagram to arrive, proving none does
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

/** UDP sockets on 127.0.0.1:port in /proc/net/udp, with their remote end ("0.0.0.0:0" when not connected). */
async function procUdp(port: number): Promise<string[]> {
  const hex = (h: string): string => {
    const [a, p] = h.split(':') as [string, string];
    return `${numberToIpv4(Buffer.from(a, 'hex').readUInt32LE(0))}:${parseInt(p, 16)}`;
  };
  const rows = (await readFile('/proc/net/udp', 'utf8')).split('\n').slice(1).map((l) => l.trim().split(/\s+/));
  return rows.filter((r) => r[1] === `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`).map((r) => hex(r[2] as string)).sort();
}

for (const backend of ['native', 'dgram'] as const) {
  test(`${backend}: openUdpForPeer() hears its peer and strangers on one port and answers both; close() frees the port`, async () => {
    const { a: peer, b: stranger, got: peerGot, next: peerNext } = await pair(backend);
    const got: Got[] = [];
    let wake: (() => void) | null = null;
    const strangerGot: Got[] = [];
    const s2 = await openUdp(backend, { address: '127.0.0.1', port: 0, onMessage: (m, ip, port) => void strangerGot.push({ data: Buffer.from(m), ip, port }), onError() {} });
    await stranger.close();
    const sock = await openUdpForPeer(backend, {
      address: '127.0.0.1',
      port: 0,
      peer: udpPeer(LOOP, peer.port),
      onMessage(msg, ip, port) {
        got.push({ data: Buffer.from(msg), ip, port });
        wake?.();
      },
      onError(err) {
        throw err;
      },
    });
    const next = async (): Promise<Got> => {
      while (got.length === 0) await new Promise<void>((r) => (wake = r));
      return got.shift() as Got;
    };
    try {
      const port = sock.port;
      assert.ok(port > 0);
      const rows = await procUdp(port);
      if (backend === 'native') assert.deepEqual(rows, ['0.0.0.0:0', `127.0.0.1:${peer.port}`].sort()); // one connected to the peer, one for everyone else
      else assert.deepEqual(rows, ['0.0.0.0:0']);
      peer.send(Buffer.from('from the peer'), null, udpPeer(LOOP, port));
      const m1 = await next();
      assert.equal(m1.data.toString(), 'from the peer');
      assert.equal(m1.port, peer.port);
      s2.send(Buffer.from('from a stranger'), null, udpPeer(LOOP, port));
      const m2 = await next();
      assert.equal(m2.data.toString(), 'from a stranger');
      assert.equal(m2.port, s2.port);
      sock.send(Buffer.from([1, 2]), Buffer.from([3]), udpPeer(LOOP, peer.port));
      sock.send(Buffer.from('go away'), null, udpPeer(LOOP, s2.port));
      const r1 = await peerNext();
      assert.deepEqual(r1.data, Buffer.from([1, 2, 3]));
      assert.equal(r1.port, port);
      const toStranger = await waitFor('the datagram to the stranger', () => strangerGot[0], 2000);
      assert.equal(toStranger.data.toString(), 'go away');
      assert.equal(toStranger.port, port);
      // The port is this transfer's alone: a plain bind or a second transfer on it fails.
      await assert.rejects(openUdp(backend, { address: '127.0.0.1', port, onMessage() {}, onError() {} }), { code: 'EADDRINUSE' });
      await assert.rejects(openUdpForPeer(backend, { address: '127.0.0.1', port, peer: udpPeer(LOOP, s2.port), onMessage() {}, onError() {} }), { code: 'EADDRINUSE' });
      await sock.close();
      assert.deepEqual(await procUdp(port), []);
      assert.equal(peerGot.length, 0);
    } finally {
      await sock.close();
      await peer.close();
      await s2.close();
    }
  });
}

test('native: another user cannot join a transfer port (SO_REUSEPORT admits the same user only)', { skip: process.getuid?.() !== 0 ? 'needs root, to run a child as nobody' : false }, async () => {
  const peer = await openUdp('native', { address: '127.0.0.1', port: 0, onMessage() {}, onError() {} });
  const sock = await openUdpForPeer('native', { address: '127.0.0.1', port: 0, peer: udpPeer(LOOP, peer.port), onMessage() {}, onError() {} });
  try {
    const addon = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'native', 'fastudp.node');
    const tryJoin = (uid: number): Promise<string> =>
      promisify(execFile)(process.execPath, [
        '-e',
        `const a = require(${JSON.stringify(addon)}); a.init(); process.setuid(${uid}); // loaded first: the checkout may not be readable by nobody
         try { a.open(${LOOP}, ${sock.port}, 2, ${LOOP}, 9); console.log('joined'); } catch (e) { console.log(e.code); }`,
      ]).then((r) => r.stdout.trim());
    assert.equal(await tryJoin(65534), 'EADDRINUSE'); // nobody: refused
    assert.equal(await tryJoin(0), 'joined'); // the same user: admitted (that is how the two sockets share the port)
  } finally {
    await sock.close();
    await peer.close();
  }
});

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
