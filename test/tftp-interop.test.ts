/**
 * Interop: real TFTP clients (curl, atftp, tftp-hpa) download byte-identical
 * files from Fleetboot's TFTP service on 127.0.0.1 (port 0), including one
 * over 100 MiB (block numbers wrap), through a data-port range and through
 * one fixed data port; and atftp through a lossy lab link and through a slow
 * one (a token bucket) with a window larger than the server's send buffer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { program } from '../src/lib/programs.js';
import { capturingLogger, freePort, sha256File, startTftp } from './tftp-helpers.js';
import { Lab, labAvailable } from './lab/lab.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

let dir = '';
let root = '';
const sums = new Map<string, string>();

/** A file of random bytes, written in 4 MiB pieces. */
async function makeFile(name: string, size: number): Promise<void> {
  const fh = await open(join(root, name), 'w');
  try {
    const piece = randomBytes(4 * MiB);
    for (let off = 0; off < size; off += piece.length) {
      await fh.write(piece, 0, Math.min(piece.length, size - off));
      piece.writeUInt32BE(off >>> 0, 0); // vary the pieces
    }
  } finally {
    await fh.close();
  }
  sums.set(name, await sha256File(join(root, name)));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fb-tftp-interop-'));
  root = join(dir, 'root');
  await run(program('mkdir'), ['-p', join(root, 'boot')]);
  await makeFile('boot/ipxe.efi', 1_000_003);
  await makeFile('medium.bin', 8 * MiB);
  // 36 MiB at 512-byte blocks (tftp-hpa) is 73728 blocks: past 65535.
  await makeFile('wrap512.bin', 36 * MiB);
  // 110 MiB at 1468-byte blocks is 78577 blocks: past 65535.
  await makeFile('huge.bin', 110 * MiB);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function curl(port: number, file: string, out: string, blksize = 1468, host = '127.0.0.1'): Promise<void> {
  await run(program('curl'), ['-s', '-S', '--max-time', '120', `tftp://${host}:${port}/${file}`, '--tftp-blksize', String(blksize), '-o', out]);
}
async function atftp(port: number, file: string, out: string, opts: string[] = ['blksize 1468', 'tsize 0', 'windowsize 16']): Promise<void> {
  const args = opts.flatMap((o) => ['--option', o]);
  await run(program('timeout'), ['120', 'atftp', ...args, '-g', '-r', file, '-l', out, '127.0.0.1', String(port)]);
}
async function tftpHpa(port: number, file: string, out: string): Promise<void> {
  await run(program('timeout'), ['120', 'tftp', '-m', 'binary', '127.0.0.1', String(port), '-c', 'get', file, out]);
}
async function assertSame(out: string, name: string): Promise<void> {
  assert.equal(await sha256File(out), sums.get(name), `${out} differs from ${name}`);
  await rm(out, { force: true });
}

test('curl, atftp and tftp-hpa download byte-identical files', async () => {
  const svc = await startTftp(root);
  try {
    await curl(svc.port, 'boot/ipxe.efi', join(dir, 'c1'));
    await assertSame(join(dir, 'c1'), 'boot/ipxe.efi');
    await curl(svc.port, 'medium.bin', join(dir, 'c2'), 512);
    await assertSame(join(dir, 'c2'), 'medium.bin');
    await atftp(svc.port, 'boot/ipxe.efi', join(dir, 'a1'));
    await assertSame(join(dir, 'a1'), 'boot/ipxe.efi');
    await atftp(svc.port, 'medium.bin', join(dir, 'a2'), ['blksize 1468', 'tsize 0']);
    await assertSame(join(dir, 'a2'), 'medium.bin');
    await tftpHpa(svc.port, 'boot/ipxe.efi', join(dir, 't1'));
    await assertSame(join(dir, 't1'), 'boot/ipxe.efi');
    // tftp-hpa and dnsmasq-style names: backslashes and a leading slash.
    await tftpHpa(svc.port, '/boot\\ipxe.efi', join(dir, 't2'));
    await assertSame(join(dir, 't2'), 'boot/ipxe.efi');
  } finally {
    await svc.close();
  }
});

test('curl, atftp and tftp-hpa download files past block 65535 (rollover), one of 110 MiB', async () => {
  const svc = await startTftp(root);
  try {
    await curl(svc.port, 'huge.bin', join(dir, 'hc'));
    await assertSame(join(dir, 'hc'), 'huge.bin');
    await atftp(svc.port, 'huge.bin', join(dir, 'ha'));
    await assertSame(join(dir, 'ha'), 'huge.bin');
    await tftpHpa(svc.port, 'wrap512.bin', join(dir, 'ht'));
    await assertSame(join(dir, 'ht'), 'wrap512.bin');
  } finally {
    await svc.close();
  }
});

test('transfers use data ports from the configured range only', async () => {
  const base = 20000 + Math.floor(Math.random() * 40000);
  const { logger, lines } = capturingLogger();
  const svc = await startTftp(root, { dataPorts: { from: base, to: base + 9 }, logger });
  try {
    await Promise.all([
      curl(svc.port, 'medium.bin', join(dir, 'r1')),
      atftp(svc.port, 'medium.bin', join(dir, 'r2')),
      tftpHpa(svc.port, 'boot/ipxe.efi', join(dir, 'r3')),
      curl(svc.port, 'boot/ipxe.efi', join(dir, 'r4')),
    ]);
    await assertSame(join(dir, 'r1'), 'medium.bin');
    await assertSame(join(dir, 'r2'), 'medium.bin');
    await assertSame(join(dir, 'r3'), 'boot/ipxe.efi');
    await assertSame(join(dir, 'r4'), 'boot/ipxe.efi');
    const ports = lines.filter((l) => l.msg === 'tftp transfer start').map((l) => Number(l.dataPort));
    assert.equal(ports.length, 4);
    for (const p of ports) assert.ok(p >= base && p <= base + 9, `data port ${p} outside ${base}-${base + 9}`);
  } finally {
    await svc.close();
  }
});

test('two clients at once share one fixed data port', async () => {
  const dataPort = await freePort();
  const { logger, lines } = capturingLogger();
  const svc = await startTftp(root, { dataPorts: { from: dataPort, to: dataPort }, logger });
  try {
    await Promise.all([curl(svc.port, 'medium.bin', join(dir, 'f1')), atftp(svc.port, 'medium.bin', join(dir, 'f2'))]);
    await assertSame(join(dir, 'f1'), 'medium.bin');
    await assertSame(join(dir, 'f2'), 'medium.bin');
    const starts = lines.filter((l) => l.msg === 'tftp transfer start');
    assert.deepEqual(
      starts.map((l) => l.dataPort),
      [dataPort, dataPort],
    );
    // They really overlapped: both started before either finished.
    const firstDone = lines.findIndex((l) => l.msg === 'tftp transfer done');
    assert.ok(lines.indexOf(starts[1] as Record<string, unknown>) < firstDone, 'transfers did not overlap');
  } finally {
    await svc.close();
  }
});

/** Fleetboot's TFTP service (bench/tftp-server.ts) in a lab host's namespace; resolves once it listens. */
async function startLabTftp(lab: Lab, host: string, args: string[]): Promise<ChildProcess> {
  const srv = lab.spawnIn(lab.host(host).netns, ['node', '--import', 'tsx', 'bench/tftp-server.ts', ...args], {
    cwd: new URL('..', import.meta.url).pathname,
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('tftp server did not start')), 20_000);
    srv.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) {
        clearTimeout(t);
        resolve();
      }
    });
    srv.on('exit', (code) => reject(new Error(`tftp server exited with ${code}`)));
  });
  return srv;
}

test('atftp gets a byte-identical file through a lab link that drops 10% of packets', { timeout: 180_000 }, async () => {
  assert.ok(await labAvailable(), 'lab tests need root and ip netns');
  const lab = await Lab.create({ subnet: '10.213.69' });
  try {
    await lab.addHost('srv', '10.213.69.1');
    await lab.addHost('cli', '10.213.69.2');
    const lossRoot = join(dir, 'loss');
    await run(program('mkdir'), ['-p', lossRoot]);
    const data = randomBytes(100_000);
    await writeFile(join(lossRoot, 'f.bin'), data);
    sums.set('loss', await sha256File(join(lossRoot, 'f.bin')));
    await startLabTftp(lab, 'srv', ['--root', lossRoot, '--address', '10.213.69.1', '--port', '69', '--timeout-ms', '1000', '--max-retries', '30', '--log', 'warn']);
    // Every packet may be lost except the client's ACK of the OACK (ACK block 0,
    // bytes 00 04 00 00): when that is lost the server resends its OACK, and atftp
    // aborts on any second OACK ("tftp: unexpected OACK", its tftp_file.c), which
    // is atftp's limit, not the server's. A lost RRQ or OACK is still recovered.
    await lab.dropPercent('cli', 10);
    await lab.dropPercent('srv', 10, ['@th,64,32', '!=', '0x00040000']);
    for (const [i, opts] of [
      ['blksize 1468', 'tsize 0'],
      ['blksize 1468', 'tsize 0', 'windowsize 8'],
    ].entries()) {
      const out = join(dir, `loss${i}`);
      // atftp re-ACKs a repeated block only once, then waits for its own timeout, and
      // gives up after a few timeouts in a row. At 1 s (seen 2026-12-07: seven
      // timeouts, then "tftp: aborting") two lost resends of one block in a row (the
      // server's backoff: 1, 2, then 4 s) could be enough; at 3 s atftp waits through
      // more of the server's resends. The server's first interval is not shorter than 1 s: a stall
      // of this VM must not make it resend the OACK, which atftp would abort on.
      await lab.exec('cli', ['timeout', '120', 'atftp', '--tftp-timeout', '3', ...opts.flatMap((o) => ['--option', o]), '-g', '-r', 'f.bin', '-l', out, '10.213.69.1', '69']);
      await assertSame(out, 'loss');
    }
  } finally {
    await lab.destroy();
  }
});

test('a window larger than the send buffer on a slow link: the sends the kernel cannot take wait in order, none is lost or sent twice (atftp)', { timeout: 180_000 }, async () => {
  assert.ok(await labAvailable(), 'lab tests need root and ip netns');
  const lab = await Lab.create({ subnet: '10.213.68' });
  try {
    await lab.addHost('srv', '10.213.68.1');
    await lab.addHost('cli', '10.213.68.2');
    const slowRoot = join(dir, 'slow');
    await run(program('mkdir'), ['-p', slowRoot]);
    const size = 3 * MiB + 777;
    await writeFile(join(slowRoot, 'f.bin'), randomBytes(size));
    sums.set('slow', await sha256File(join(slowRoot, 'f.bin')));
    // 128 blocks of 1468 bytes are ~290 KB of socket memory (each datagram is
    // charged ~2.3 KB): more than the kernel's default send buffer, and the
    // token bucket drains it at 40 Mbit/s, so most of each window meets EAGAIN.
    const wmem = Number(await lab.exec('srv', ['cat', '/proc/sys/net/core/wmem_default']));
    assert.ok(wmem < 128 * 2304, `wmem_default ${wmem} is too large for this test to fill the send buffer`);
    await lab.exec('srv', ['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', '40mbit', 'burst', '16kb', 'limit', '4mb']);
    await startLabTftp(lab, 'srv', ['--root', slowRoot, '--address', '10.213.68.1', '--port', '69', '--max-windowsize', '128', '--timeout-ms', '5000', '--log', 'warn']);
    // Count what reaches the client from the server: exactly the OACK and one DATA
    // per block (the 5 s resend timeout keeps a stall of this VM from adding any).
    await lab.exec('cli', ['nft', 'add table inet fbslow { chain input { type filter hook input priority 0; ip saddr 10.213.68.1 udp sport != 69 counter; }; }']);
    const out = join(dir, 'slow.out');
    await lab.exec('cli', ['timeout', '120', 'atftp', '--tftp-timeout', '5', '--option', 'blksize 1468', '--option', 'windowsize 128', '-g', '-r', 'f.bin', '-l', out, '10.213.68.1', '69']);
    await assertSame(out, 'slow');
    const counted = /packets (\d+)/.exec(await lab.exec('cli', ['nft', 'list table inet fbslow']));
    const blocks = Math.floor(size / 1468) + 1;
    assert.equal(Number(counted?.[1]), blocks + 1, 'datagrams from the server: the OACK and each block once');
  } finally {
    await lab.destroy();
  }
});
