import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enrolCandidates, writeEnrolFile } from './enrol.js';
import { jobEnrol } from './run.js';
import type { Manifest, ManifestPartition } from '../model/manifest.js';

const SPEC = { server: 'https://10.0.0.1:8443', caSha256: 'ab'.repeat(32), token: 'tok_0123456789abcdef-XYZ' };
const root = process.getuid?.() === 0;

function part(number: number, filesystem: string | null): ManifestPartition {
  return { number, start: 2048 * number, sectors: 2048, type: '83', uuid: null, name: null, bootable: false, filesystem, tool: 'raw', compression: 'zstd', file: `p${number}.raw.zst`, sizeBytes: 2048 * 512, usedBytes: null, streamBytes: 1, sha256: '0'.repeat(64) };
}

function manifest(parts: ManifestPartition[]): Manifest {
  return { format: 'fleetboot-image', version: 1, name: 'x', createdAt: '2026-12-01T00:00:00.000Z', source: { mac: null, taskId: null, disk: '/dev/sda', diskModel: null }, diskBytes: 1 << 30, table: { type: 'dos', sectorSize: 512, id: null, sfdisk: 'label: dos\n' }, partitions: parts };
}

test('enrolCandidates() takes the Linux filesystems in partition order and names the others', () => {
  const m = manifest([part(3, 'xfs'), part(1, 'vfat'), part(2, 'ext4'), part(4, null), part(5, 'ntfs'), part(6, 'ext3')]);
  const { candidates, skipped } = enrolCandidates(m, '/dev/nvme0n1');
  assert.deepEqual(candidates.map((c) => [c.device, c.filesystem]), [
    ['/dev/nvme0n1p2', 'ext4'],
    ['/dev/nvme0n1p3', 'xfs'],
    ['/dev/nvme0n1p6', 'ext3'],
  ]);
  assert.deepEqual(skipped.map((s) => s.text), ['/dev/nvme0n1p1 (vfat)', '/dev/nvme0n1p4 (no filesystem)', '/dev/nvme0n1p5 (ntfs)']);
  assert.deepEqual(enrolCandidates(m, '/dev/sda').candidates[0]?.device, '/dev/sda2');
});

test('jobEnrol() accepts a well-formed enrol and refuses anything else before a byte is written', () => {
  assert.equal(jobEnrol({}), null);
  assert.equal(jobEnrol({ enrol: null }), null);
  assert.deepEqual(jobEnrol({ enrol: SPEC }), SPEC);
  assert.deepEqual(jobEnrol({ enrol: { ...SPEC, server: 'https://fleetboot.example.org:8443' } })?.server, 'https://fleetboot.example.org:8443');
  const refused: Array<[unknown, RegExp]> = [
    ['text', /must be a JSON object/],
    [{ ...SPEC, server: 'http://10.0.0.1:8443' }, /enrol\.server must be https:\/\/HOST:PORT/],
    [{ ...SPEC, server: 'https://10.0.0.1:8443/x' }, /enrol\.server/],
    [{ ...SPEC, server: 'https://10.0.0.1' }, /enrol\.server/],
    [{ ...SPEC, server: 'https://user@10.0.0.1:8443' }, /enrol\.server/],
    [{ ...SPEC, server: 'https://10.0.0.256:8443' }, /valid address/],
    [{ ...SPEC, server: 'https://10.0.0.1:65536' }, /port up to 65535/],
    [{ ...SPEC, server: 'https://$(reboot):1' }, /enrol\.server/],
    [{ ...SPEC, caSha256: 'AB'.repeat(32) }, /enrol\.caSha256 must be a SHA-256/],
    [{ ...SPEC, caSha256: 'ab'.repeat(31) }, /enrol\.caSha256/],
    [{ ...SPEC, token: '../../etc/shadow-xxxxxxxx' }, /enrol\.token must be an enrolment token/],
    [{ ...SPEC, token: 'short' }, /enrol\.token/],
    [{ ...SPEC, token: 'a'.repeat(129) }, /enrol\.token/],
    [{ ...SPEC, extra: 1 }, /unknown field "extra"/],
  ];
  for (const [enrol, re] of refused) {
    assert.throws(() => jobEnrol({ enrol }), (e: Error) => e.name === 'AgentError' && /^the server's enrolment data is refused \(nothing was written\): /.test(e.message) && re.test(e.message), JSON.stringify(enrol));
  }
});

test('writeEnrolFile() makes var/lib/fleetboot-agent (0700) and enrol.json (0600) atomically, replacing an older one', { skip: root ? false : 'needs root (chown to root)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-enrol-'));
  try {
    const path = writeEnrolFile(dir, SPEC);
    assert.equal(path, join(dir, 'var/lib/fleetboot-agent/enrol.json'));
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), SPEC);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'var/lib/fleetboot-agent')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'var/lib')).mode & 0o777, 0o755);
    // An existing, looser state directory (e.g. made by a package) is closed, the file replaced.
    const again = { ...SPEC, token: 'another-token-0123456789' };
    chmodSync(join(dir, 'var/lib/fleetboot-agent'), 0o755);
    writeEnrolFile(dir, again);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), again);
    assert.equal(statSync(join(dir, 'var/lib/fleetboot-agent')).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(dir, 'var/lib/fleetboot-agent')), ['enrol.json'], 'a temporary file was left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeEnrolFile() refuses a symbolic link on the way (it would point outside the deployed tree)', { skip: root ? false : 'needs root (chown to root)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-enrol-'));
  const outside = mkdtempSync(join(tmpdir(), 'fleetboot-outside-'));
  try {
    mkdirSync(join(dir, 'var'));
    symlinkSync(outside, join(dir, 'var/lib'));
    assert.throws(() => writeEnrolFile(dir, SPEC), /var\/lib is not a directory \(a symbolic link or a file\): refused/);
    assert.deepEqual(readdirSync(outside), []);
    rmSync(join(dir, 'var/lib'));
    mkdirSync(join(dir, 'var/lib'));
    writeFileSync(join(dir, 'var/lib/fleetboot-agent'), 'a file');
    assert.throws(() => writeEnrolFile(dir, SPEC), /var\/lib\/fleetboot-agent is not a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});
