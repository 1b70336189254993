/**
 * Bad input: malformed and hostile TFTP packets get a TFTP ERROR or no reply,
 * never a crash or a hang, and a real client (curl) downloading from the same
 * server at the same time gets its file intact.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { program } from '../src/lib/programs.js';
import { download, RawClient, sha256File, startTftp } from './tftp-helpers.js';
import type { TftpService } from '../src/net/tftp-server.js';
import { encode, type TftpOption } from '../src/protocol/tftp/index.js';

const run = promisify(execFile);

let dir = '';
let root = '';
let svc: TftpService;
const good = randomBytes(40_000);
let bigSum = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fb-tftp-bad-'));
  root = join(dir, 'root');
  await mkdir(join(root, 'sub'), { recursive: true });
  await writeFile(join(root, 'good.bin'), good);
  await writeFile(join(root, 'sub', 'inner.bin'), good);
  await writeFile(join(dir, 'secret.txt'), 'outside the root');
  await symlink(join(dir, 'secret.txt'), join(root, 'escape.txt'));
  await symlink('/etc', join(root, 'etc-link'));
  // Big enough that curl is still downloading while the bad packets fly.
  await run(program('dd'), ['if=/dev/urandom', `of=${join(root, 'big.bin')}`, 'bs=1M', 'count=8', 'status=none']);
  bigSum = await sha256File(join(root, 'big.bin'));
  svc = await startTftp(root, { timeoutMs: 500, maxBlksize: 1468, maxWindowsize: 16 });
});
after(async () => {
  await svc.close();
  await rm(dir, { recursive: true, force: true });
});

/** Send raw bytes to the server port; return "ERROR n message", another op name, or "silence". */
async function reply(bytes: Buffer, waitMs = 400): Promise<string> {
  const c = await RawClient.open();
  try {
    c.send(bytes, svc.port);
    try {
      const { p } = await c.nextPacket(waitMs);
      return p.op === 'ERROR' ? `ERROR ${p.code} ${p.message}` : p.op;
    } catch {
      return 'silence';
    }
  } finally {
    await c.close();
  }
}

function rrq(filename: string, options: TftpOption[] = [], mode = 'octet'): Buffer {
  return encode({ op: 'RRQ', filename, mode, options });
}

test('bad input: every kind of bad packet gets an ERROR or silence while curl keeps downloading', async () => {
  // curl downloads big.bin again and again until the bad input is over; every copy must be intact.
  let stop = false;
  const background = (async (): Promise<number> => {
    let n = 0;
    while (!stop) {
      const out = join(dir, `curl${n}.out`);
      await run(program('curl'), ['-s', '-S', '--max-time', '120', `tftp://127.0.0.1:${svc.port}/big.bin`, '--tftp-blksize', '1468', '-o', out]);
      assert.equal(await sha256File(out), bigSum, `curl download ${n} was disturbed`);
      await rm(out);
      n++;
    }
    return n;
  })();

  // Too short for an opcode, and stray packets of no transfer: silence.
  assert.equal(await reply(Buffer.alloc(0)), 'silence');
  assert.equal(await reply(Buffer.from([0])), 'silence');
  assert.equal(await reply(Buffer.from('00040001', 'hex')), 'silence'); // ACK
  assert.equal(await reply(Buffer.from('00030001abcd', 'hex')), 'silence'); // DATA
  assert.equal(await reply(Buffer.from('0005000168690000', 'hex')), 'silence'); // ERROR
  assert.equal(await reply(Buffer.from('0006', 'hex')), 'silence'); // OACK

  // Bad opcodes and truncated requests: ERROR 4.
  for (const hex of ['0000', '0007', 'ffff', '0009aabbcc', '0001', '0001666f6f', '0001666f6f00', '0001666f6f006f63', '0001006f6374657400']) {
    assert.equal(await reply(Buffer.from(hex, 'hex')), 'ERROR 4 Illegal TFTP operation', hex);
  }
  assert.equal(await reply(rrq('good.bin', [], 'mail')), 'ERROR 4 Unsupported mode');
  assert.equal(await reply(rrq('good.bin', [], 'binary')), 'ERROR 4 Unsupported mode');

  // Writes, missing files, directories.
  assert.equal(await reply(encode({ op: 'WRQ', filename: 'good.bin', mode: 'octet', options: [] })), 'ERROR 2 Read-only server');
  assert.equal(await reply(encode({ op: 'WRQ', filename: 'new.bin', mode: 'octet', options: [{ name: 'tsize', value: '10' }] })), 'ERROR 2 Read-only server');
  assert.equal(await reply(rrq('missing.bin')), 'ERROR 1 File not found');
  assert.equal(await reply(rrq('sub')), 'ERROR 2 Not a regular file');
  assert.equal(await reply(rrq('/')), 'ERROR 2 Not a regular file');

  // Escapes: .. segments, absolute paths, symlinks leading out of the root.
  for (const name of ['../secret.txt', 'sub/../../secret.txt', '..\\secret.txt', 'sub\\..\\..\\secret.txt', '/../secret.txt', '..', `${root}/../secret.txt`]) {
    assert.equal(await reply(rrq(name)), 'ERROR 2 Access violation', name);
  }
  assert.equal(await reply(rrq('escape.txt')), 'ERROR 2 Access violation');
  assert.equal(await reply(rrq('etc-link/passwd')), 'ERROR 2 Access violation');
  // Absolute paths are relative to the root: the host's /etc/passwd is never served.
  assert.equal(await reply(rrq('/etc/passwd')), 'ERROR 1 File not found');
  assert.equal(await reply(rrq('//etc//passwd')), 'ERROR 1 File not found');
  assert.equal(await reply(rrq(join(dir, 'secret.txt'))), 'ERROR 1 File not found');
  // Non-UTF-8 name bytes, and a name of 60 000 bytes.
  assert.equal(await reply(Buffer.concat([Buffer.from('0001fffe00', 'hex'), Buffer.from('octet\0')])), 'ERROR 1 File not found');
  assert.equal(await reply(rrq('a'.repeat(60_000))), 'ERROR 1 File not found');

  // Absurd option values: ignored or clamped, and the file still arrives intact.
  const absurd: TftpOption[][] = [
    [{ name: 'blksize', value: '0' }],
    [{ name: 'blksize', value: '7' }],
    [{ name: 'blksize', value: '70000' }],
    [{ name: 'blksize', value: '-1' }],
    [{ name: 'blksize', value: 'lots' }],
    [{ name: 'windowsize', value: '0' }],
    [{ name: 'windowsize', value: '70000' }],
    [{ name: 'timeout', value: '0' }],
    [{ name: 'timeout', value: '300' }],
    [{ name: 'tsize', value: 'x' }],
    Array.from({ length: 500 }, (_, i) => ({ name: `opt${i}`, value: 'v' })),
  ];
  for (const options of absurd) {
    const r = await download(svc.port, 'good.bin', { options });
    assert.deepEqual(r.data, good, JSON.stringify(options).slice(0, 80));
    for (const o of r.oack ?? []) {
      if (o.name === 'blksize') assert.equal(o.value, '1468');
      if (o.name === 'windowsize') assert.equal(o.value, '16');
    }
  }

  // Random garbage: at most an ERROR back, never a crash.
  const fuzz = await RawClient.open();
  try {
    for (let i = 0; i < 3000; i++) {
      const b = randomBytes(1 + (i % 64));
      if (i % 2 === 0) b[0] = 0;
      fuzz.send(b, svc.port);
    }
    // Drain replies for a moment; each must be a TFTP ERROR (or a transfer for a lucky RRQ).
    for (;;) {
      let got;
      try {
        got = await fuzz.nextPacket(300);
      } catch {
        break;
      }
      assert.ok(['ERROR', 'DATA', 'OACK'].includes(got.p.op), got.p.op);
    }
  } finally {
    await fuzz.close();
  }

  // A wrong TID on a live transfer's data port gets ERROR 5; the transfer goes on.
  const c = await RawClient.open();
  const intruder = await RawClient.open();
  try {
    c.send(rrq('good.bin'), svc.port);
    const d1 = await c.nextPacket();
    intruder.send(Buffer.from('00040001', 'hex'), d1.port);
    const e = await intruder.nextPacket();
    assert.ok(e.p.op === 'ERROR' && e.p.code === 5);
    c.send(encode({ op: 'ERROR', code: 0, message: 'done testing' }), d1.port);
  } finally {
    await c.close();
    await intruder.close();
  }

  stop = true;
  assert.ok((await background) >= 1);
  // And the server still serves afterwards.
  assert.deepEqual((await download(svc.port, 'sub/inner.bin')).data, good);
});
