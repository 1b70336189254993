import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addRevision, deleteImageRows, pruneRevisions } from './images.js';
import { copiesOnNode, getCopy, listCopies, servableOn, setCopy, setCopyProgress, verifiedHolders } from './copies.js';
import { withTempStore } from './temp-store.js';
import { sampleManifest } from './test-fixtures.js';

test('setCopy() inserts then updates one row per (image, revision, node); verified stamps verified_at and clears the error', async () => {
  await withTempStore('copies', async (s) => {
    const n = await addRevision(s.db, { dir: '00000000-0000-4000-8000-000000000001', manifest: sampleManifest('win'), manifestSha256: 'a'.repeat(64), state: 'ready' });
    assert.equal(await getCopy(s.db, 'win', n, 'b'), null);
    await setCopy(s.db, 'win', n, 'b', { state: 'copying', bytesDone: 0, bytesTotal: 5_000_000_000 }, new Date('2026-12-07T10:00:00Z'));
    await setCopyProgress(s.db, 'win', n, 'b', 4_000_000_000, new Date('2026-12-07T10:00:01Z'));
    let c = await getCopy(s.db, 'win', n, 'b');
    assert.deepEqual(c, { image: 'win', number: n, node: 'b', state: 'copying', bytesDone: 4_000_000_000, bytesTotal: 5_000_000_000, error: null, verifiedAt: null, updatedAt: '2026-12-07T10:00:01.000Z' });
    await setCopy(s.db, 'win', n, 'b', { state: 'corrupt', error: 'stream p1 differs' });
    c = await getCopy(s.db, 'win', n, 'b');
    assert.equal(c?.state, 'corrupt');
    assert.equal(c?.error, 'stream p1 differs');
    assert.equal(c?.bytesDone, 4_000_000_000, 'bytes kept when not given');
    await setCopy(s.db, 'win', n, 'b', { state: 'verified', bytesDone: 5_000_000_000, bytesTotal: 5_000_000_000 }, new Date('2026-12-07T11:00:00Z'));
    c = await getCopy(s.db, 'win', n, 'b');
    assert.equal(c?.state, 'verified');
    assert.equal(c?.error, null);
    assert.equal(c?.verifiedAt, '2026-12-07T11:00:00.000Z');
    // Corrupt later: verified_at stays (when it last verified).
    await setCopy(s.db, 'win', n, 'b', { state: 'corrupt', error: 'flipped' }, new Date('2026-12-08T11:00:00Z'));
    assert.equal((await getCopy(s.db, 'win', n, 'b'))?.verifiedAt, '2026-12-07T11:00:00.000Z');
    assert.equal((await listCopies(s.db, 'win')).length, 1);
  });
});

test('servableOn(): a verified copy on that node, or a revision without any copy rows; verifiedHolders() lists the nodes', async () => {
  await withTempStore('copies', async (s) => {
    const m = sampleManifest('deb');
    const one = await addRevision(s.db, { dir: '00000000-0000-4000-8000-000000000002', manifest: m, manifestSha256: 'b'.repeat(64), state: 'ready' });
    const two = await addRevision(s.db, { dir: '00000000-0000-4000-8000-000000000003', manifest: m, manifestSha256: 'c'.repeat(64), state: 'ready' });
    assert.equal(await servableOn(s.db, 'deb', one, 'a'), true, 'no rows: served as before (single server)');
    await setCopy(s.db, 'deb', two, 'a', { state: 'verified' });
    assert.equal(await servableOn(s.db, 'deb', two, 'a'), true);
    assert.equal(await servableOn(s.db, 'deb', two, 'b'), false, 'b has no copy');
    await setCopy(s.db, 'deb', two, 'b', { state: 'copying' });
    assert.equal(await servableOn(s.db, 'deb', two, 'b'), false);
    await setCopy(s.db, 'deb', two, 'c', { state: 'verified' });
    assert.deepEqual(await verifiedHolders(s.db, 'deb', two), ['a', 'c']);
    assert.deepEqual((await copiesOnNode(s.db, 'b')).map((c) => c.state), ['copying']);
    assert.deepEqual(await copiesOnNode(s.db, 'b', 'verified'), []);
    // Pruned revisions and deleted images take their copies along.
    assert.deepEqual((await pruneRevisions(s.db, 'deb', 1)).map((p) => p.number), [one]);
    await setCopy(s.db, 'deb', one, 'a', { state: 'verified' });
    await deleteImageRows(s.db, 'deb');
    assert.deepEqual(await listCopies(s.db), []);
  });
});
