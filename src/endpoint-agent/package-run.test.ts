import { strict as assert } from 'node:assert';
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { OUTPUT_TAIL_BYTES, packageSigningBytes, sha256Hex, type PackageManifest, type SignedPackage } from '../model/endpoint.js';
import { killTreeLinux, readProcs } from './kill-tree.js';
import { silentAgentLog } from './log.js';
import { runPackage, type PackageRunOptions } from './package-run.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fa-pkg-'));
  dirs.push(d);
  return d;
}

const keys = generateKeyPairSync('ed25519');
const packageKey = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const otherKey = generateKeyPairSync('ed25519').privateKey;

function pkg(files: Record<string, string>, argv: string[], over: Partial<PackageManifest> = {}, signer = keys.privateKey): { pkg: SignedPackage; blobs: Map<string, Buffer> } {
  const blobs = new Map<string, Buffer>();
  const list = Object.entries(files).map(([name, text]) => {
    const b = Buffer.from(text);
    blobs.set(sha256Hex(b), b);
    return { name, sha256: sha256Hex(b), size: b.length, executable: name.endsWith('.sh') };
  });
  const manifest: PackageManifest = { format: 'fleetboot-package', version: 1, name: 'test-pkg', revision: 1, files: list, argv, timeoutSeconds: 30, rebootCodes: [3010], successCodes: [0], createdAt: '2026-12-01T10:00:00Z', ...over };
  return { pkg: { manifest, signature: sign(null, packageSigningBytes(manifest), signer).toString('base64') }, blobs };
}

function options(blobs: Map<string, Buffer>, runDir: string, over: Partial<PackageRunOptions> = {}): PackageRunOptions & { started: number } {
  const o = {
    started: 0,
    runDir,
    packageKey,
    fetchFile: async (sha: string, onChunk: (c: Buffer) => void) => {
      const b = blobs.get(sha);
      if (!b) throw new Error(`no file ${sha}`);
      for (let i = 0; i < b.length; i += 7) onChunk(b.subarray(i, i + 7));
    },
    beforeStart: () => {
      o.started++;
    },
    killTree: (pid: number, grace: number) => killTreeLinux(pid, grace),
    log: silentAgentLog,
    graceMs: 200,
    retryMs: 10,
    ...over,
  };
  return o;
}

test('runPackage() refuses a package whose signature does not verify, and runs nothing', async () => {
  const d = tmp();
  const canary = join(d, 'canary');
  const { pkg: p, blobs } = pkg({ 'run.sh': `#!/bin/sh\ntouch ${canary}\n` }, ['./run.sh'], {}, otherKey);
  const o = options(blobs, join(d, 'run'));
  const r = await runPackage(1, p, o);
  assert.equal(r.status, 'bad-signature');
  assert.match(r.message, /signature of test-pkg r1 does not verify/);
  assert.equal(o.started, 0);
  assert.equal(existsSync(canary), false);
  // A manifest changed after signing is refused the same way.
  const good = pkg({ 'run.sh': `#!/bin/sh\ntouch ${canary}\n` }, ['./run.sh']);
  const changed: SignedPackage = { ...good.pkg, manifest: { ...good.pkg.manifest, argv: ['/bin/sh', '-c', `touch ${canary}`] } };
  assert.equal((await runPackage(1, changed, options(good.blobs, join(d, 'run')))).status, 'bad-signature');
  assert.equal((await runPackage(1, good.pkg, options(good.blobs, join(d, 'run'), { packageKey: 'AAAA' }))).status, 'bad-signature');
  assert.equal(existsSync(canary), false);
});

test('runPackage() refuses a file whose sha256 differs, names both hashes, removes the directory, runs nothing', async () => {
  const d = tmp();
  const canary = join(d, 'canary');
  const { pkg: p, blobs } = pkg({ 'data.bin': 'the real data', 'run.sh': `#!/bin/sh\ntouch ${canary}\n` }, ['./run.sh']);
  const realSha = p.manifest.files[0]?.sha256 as string;
  const tampered = Buffer.from('the fake data');
  blobs.set(realSha, tampered);
  const o = options(blobs, join(d, 'run'));
  const r = await runPackage(2, p, o);
  assert.equal(r.status, 'hash-mismatch');
  assert.ok(r.message.includes(`data.bin: expected sha256 ${realSha}`), r.message);
  assert.ok(r.message.includes(`got ${sha256Hex(tampered)}`), r.message);
  assert.equal(o.started, 0);
  assert.equal(existsSync(canary), false);
  assert.equal(existsSync(join(d, 'run')), false);
});

test('runPackage() stops a download larger than the manifest says', async () => {
  const d = tmp();
  const canary = join(d, 'canary');
  const { pkg: p, blobs } = pkg({ 'run.sh': `#!/bin/sh\ntouch ${canary}\n` }, ['./run.sh']);
  const f = p.manifest.files[0];
  assert.ok(f);
  let offered = 0;
  const o = options(blobs, join(d, 'run'), {
    fetchFile: async (_sha, onChunk) => {
      for (let i = 0; i < 1000; i++) {
        offered++;
        onChunk(Buffer.alloc(64, 0x41));
      }
    },
  });
  const r = await runPackage(3, p, o);
  assert.equal(r.status, 'hash-mismatch');
  assert.match(r.message, /run\.sh: the server sent more than the manifest's \d+ bytes/);
  assert.ok(offered < 10, 'the download stopped at once');
  assert.equal(existsSync(canary), false);
});

test('runPackage() reports exit 3 as failed with both outputs; runs a bare argv[0] from the package, not from PATH', async () => {
  const d = tmp();
  const { pkg: p, blobs } = pkg({ 'true.sh': '#!/bin/sh\necho "out: $1"\necho "err: $(pwd)" >&2\nexit 3\n' }, ['true.sh', 'arg one']);
  const o = options(blobs, join(d, 'run'));
  const r = await runPackage(4, p, o);
  assert.equal(o.started, 1);
  assert.equal(r.status, 'failed');
  assert.equal(r.exitCode, 3);
  assert.equal(r.signal, null);
  assert.equal(r.stdout, 'out: arg one\n');
  assert.equal(r.stderr, `err: ${join(d, 'run')}\n`);
  assert.match(r.message, /test-pkg r1 exited with 3 \(success codes: 0\)/);
  assert.equal(r.rebootRequested, false);
});

test('runPackage(): a reboot code succeeds with rebootRequested; output is cut to the tail', async () => {
  const d = tmp();
  // Linux exit codes are 0-255 (3010 would read as 194): the reboot code here is 194.
  const p2 = pkg({ 'big.sh': `#!/bin/sh\nhead -c 20000 /dev/zero | tr '\\0' a\necho END\nexit 194\n` }, ['./big.sh'], { rebootCodes: [194] });
  const r2 = await runPackage(6, p2.pkg, options(p2.blobs, join(d, 'run2')));
  assert.equal(r2.status, 'succeeded');
  assert.equal(r2.exitCode, 194);
  assert.equal(r2.rebootRequested, true);
  assert.equal(Buffer.byteLength(r2.stdout), OUTPUT_TAIL_BYTES);
  assert.ok(r2.stdout.endsWith('aaaEND\n'), r2.stdout.slice(-20));
});

test('runPackage() kills the whole tree at the timeout, children in their own session included', async () => {
  const d = tmp();
  const pids = join(d, 'pids');
  const script = `#!/bin/sh\nsleep 100 &\necho $! >> ${pids}\nsetsid sleep 100 &\necho $! >> ${pids}\necho started\nwait\n`;
  const { pkg: p, blobs } = pkg({ 'slow.sh': script }, ['./slow.sh'], { timeoutSeconds: 1 });
  const t0 = Date.now();
  const r = await runPackage(7, p, options(blobs, join(d, 'run')));
  assert.equal(r.status, 'timeout');
  assert.equal(r.stdout, 'started\n');
  assert.match(r.message, /did not finish within 1 s/);
  assert.ok(Date.now() - t0 < 5000);
  const children = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
  assert.equal(children.length, 2);
  const live = new Set(readProcs().filter((x) => x.state !== 'Z').map((x) => x.pid));
  assert.deepEqual(children.filter((c) => live.has(c)), [], 'no child remains');
});

test('runPackage() reports a program that cannot start, and a signal', async () => {
  const d = tmp();
  const a = pkg({ 'x.txt': 'x' }, ['/nonexistent/program']);
  const r = await runPackage(8, a.pkg, options(a.blobs, join(d, 'a')));
  assert.equal(r.status, 'failed');
  assert.match(r.message, /cannot start \/nonexistent\/program: .*ENOENT/);
  const b = pkg({ 'k.sh': '#!/bin/sh\nkill -SEGV $$\n' }, ['./k.sh']);
  const r2 = await runPackage(9, b.pkg, options(b.blobs, join(d, 'b')));
  assert.equal(r2.status, 'failed');
  assert.equal(r2.signal, 'SIGSEGV');
  assert.match(r2.message, /killed by SIGSEGV/);
});
