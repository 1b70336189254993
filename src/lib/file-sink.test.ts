import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DIRECT_ALIGN, openFileSink } from './file-sink.js';

/** 20 MiB and an odd tail: more than the sink's slots hold at once (backpressure), and an unaligned end. */
const DATA = randomBytes(20 * 1024 * 1024 + 4321);

/** The data in chunks of odd sizes (as a network stream delivers them). */
function chunks(data: Buffer, from = 0): Buffer[] {
  const out: Buffer[] = [];
  for (let i = from, k = 0; i < data.length; k++) {
    const n = [16384, 1, 70001, 4096, 333][k % 5] as number;
    out.push(data.subarray(i, Math.min(data.length, i + n)));
    i += n;
  }
  return out;
}

function directSupported(dir: string): boolean {
  try {
    closeSync(openSync(join(dir, 'probe'), constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o600));
    return true;
  } catch {
    return false;
  }
}

test('file sink: a stream written from byte 0, around the page cache where the file system allows it, and without', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-sink-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const direct of [true, false]) {
    const path = join(dir, `out-${direct}`);
    // An old file is truncated (direct), a new one is made with the mode given (plain).
    if (direct) writeFileSync(path, 'old contents');
    const sink = await openFileSink(path, { start: 0, direct });
    assert.equal(sink.direct, direct && directSupported(dir), 'O_DIRECT when asked for and the file system takes it');
    await pipeline(Readable.from(chunks(DATA)), sink);
    await sink.settled;
    assert.equal(sink.written, DATA.length);
    assert.ok(readFileSync(path).equals(DATA), `direct ${direct}: the file holds the stream`);
    if (!direct) assert.equal(statSync(path).mode & 0o777, 0o600);
  }
});

test('file sink: a resume at an odd byte keeps the prefix and appends the rest', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-sink-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'out');
  const start = 3 * DIRECT_ALIGN + 77;
  writeFileSync(path, DATA.subarray(0, start));
  const sink = await openFileSink(path, { start });
  await pipeline(Readable.from(chunks(DATA, start)), sink);
  await sink.settled;
  assert.ok(readFileSync(path).equals(DATA));
});

test('file sink: when the source fails, every byte received is written and the file is a prefix of the stream', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-sink-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'out');
  const cutAt = 9 * 1024 * 1024 + 12345;
  const sink = await openFileSink(path, { start: 0 });
  async function* source(): AsyncGenerator<Buffer> {
    yield DATA.subarray(0, cutAt);
    throw new Error('connection cut by the test');
  }
  await assert.rejects(pipeline(source(), sink), /connection cut by the test/);
  await sink.settled;
  const got = readFileSync(path);
  assert.equal(got.length, cutAt, 'nothing received is lost');
  assert.ok(got.equals(DATA.subarray(0, cutAt)));
});

test('file sink: a start that is not a byte offset is refused, saying what it got', async () => {
  await assert.rejects(openFileSink('/nonexistent/x', { start: -1 }), /start must be a byte offset >= 0, got -1/);
});

test('file sink: tap sees every chunk before it is taken; what it throws fails the stream, and that chunk is not written', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-sink-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'out');
  const parts = chunks(DATA);
  let seen = 0;
  const limit = 5 * 1024 * 1024;
  const sink = await openFileSink(path, {
    start: 0,
    tap(chunk) {
      if (seen + chunk.length > limit) throw new Error(`more than ${limit} bytes`);
      seen += chunk.length;
    },
  });
  await assert.rejects(pipeline(Readable.from(parts), sink), new RegExp(`more than ${limit} bytes`));
  await sink.settled;
  const got = readFileSync(path);
  assert.equal(got.length, seen, 'every chunk the tap passed, and only those');
  assert.ok(got.equals(DATA.subarray(0, seen)));
});
