/**
 * The lease store's conditional writes (src/store/leases.ts): one suite run
 * against both faces, the synchronous prepared statements (SQLite only) and
 * the same SQL through Kysely (SQLite, and PostgreSQL in the test command's
 * PostgreSQL pass); and the migration that fills client_key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kyselyLeaseStore, sqliteLeaseStore } from './leases.js';
import { openStore, type Store } from './db.js';
import { testDatabaseUrl, withTempStore } from './temp-store.js';
import { sql } from 'kysely';
import { clientKey, DECLINED_KEY, leaseKey, type Lease, type LeaseWrite } from '../model/lease.js';

const NOW = 1_000_000;
const MAC1 = '52:54:00:00:00:01';
const MAC2 = '52:54:00:00:00:02';

function lease(ip: string, mac: string, state: Lease['state'], expiresAt: number, o: Partial<Lease> = {}): Lease {
  return { ip, mac, clientId: null, state, expiresAt, hostname: null, updatedAt: NOW, ...o };
}

/** Either face, awaited. */
interface Face {
  commit(w: LeaseWrite): Promise<boolean>;
  row(ip: string): Promise<Lease | null>;
  load(): Promise<Lease[]>;
}
/** The face, or null when the store has none (no synchronous one on PostgreSQL). */
const faces: Record<string, (s: Store) => Face | null> = {
  sync: (s) => {
    if (s.sqlite === null) return null;
    const f = sqliteLeaseStore(s.sqlite);
    return { commit: async (w) => f.commit(w), row: async (ip) => f.row(ip), load: async () => f.load() };
  },
  kysely: (s) => kyselyLeaseStore(s.db),
};

for (const [name, make] of Object.entries(faces)) {
  test(`${name}: a claim inserts, takes over its own client's row or a free one, and loses to another client's live row`, async (t) => {
    await withTempStore('leases', async (s) => {
      const f = make(s);
      if (!f) return t.skip(`no ${name} face on ${s.dialect}`);
      assert.equal(await f.commit({ kind: 'claim', lease: lease('10.0.0.1', MAC1, 'offered', NOW + 60_000) }), true);
      assert.equal(await f.commit({ kind: 'claim', lease: lease('10.0.0.1', MAC2, 'offered', NOW + 60_000) }), false, "another client's live offer");
      assert.equal(await f.commit({ kind: 'claim', lease: lease('10.0.0.1', MAC1, 'bound', NOW + 600_000, { hostname: 'pc1' }) }), true, 'its own');
      assert.deepEqual(await f.row('10.0.0.1'), lease('10.0.0.1', MAC1, 'bound', NOW + 600_000, { hostname: 'pc1' }));
      // The same client by its identifier 01+MAC is the same owner.
      assert.equal(await f.commit({ kind: 'claim', lease: lease('10.0.0.1', MAC1, 'bound', NOW + 600_000, { clientId: '01525400000001' }) }), true);
      // Past its end at the claim's time: anyone's.
      assert.equal(await f.commit({ kind: 'claim', lease: lease('10.0.0.1', MAC2, 'offered', NOW + 700_000, { updatedAt: NOW + 600_000 }) }), true);
      assert.equal((await f.row('10.0.0.1'))?.mac, MAC2);
      // Released and expired rows are free at once; declined ones are held until their end.
      for (const [i, state, free] of [[7, 'released', true], [8, 'expired', true], [9, 'declined', false]] as const) {
        const ip = `10.0.0.${i}`;
        assert.equal(await f.commit({ kind: 'claim', lease: lease(ip, state === 'declined' ? '' : MAC1, state === 'declined' ? 'offered' : state, NOW + 60_000) }), true);
        if (state === 'declined') assert.equal(await f.commit({ kind: 'decline', lease: lease(ip, '', 'declined', NOW + 60_000), owner: clientKey('', null) }), true);
        assert.equal(await f.commit({ kind: 'claim', lease: lease(ip, MAC2, 'offered', NOW + 60_000) }), free, state);
      }
    });
  });

  test(`${name}: end, decline and reclaim only change the row while it is as expected`, async (t) => {
    await withTempStore('leases', async (s) => {
      const f = make(s);
      if (!f) return t.skip(`no ${name} face on ${s.dialect}`);
      const k1 = clientKey(MAC1, null);
      await f.commit({ kind: 'claim', lease: lease('10.0.0.1', MAC1, 'bound', NOW + 600_000) });
      const ended = lease('10.0.0.1', MAC1, 'released', NOW, { updatedAt: NOW + 1 });
      assert.equal(await f.commit({ kind: 'end', lease: ended, owner: clientKey(MAC2, null), from: ['offered', 'bound'] }), false, "not the owner's");
      assert.equal(await f.commit({ kind: 'end', lease: ended, owner: k1, from: ['offered', 'offered'] }), false, 'not in that state');
      assert.equal(await f.commit({ kind: 'end', lease: ended, owner: k1, from: ['offered', 'bound'] }), true);
      assert.equal((await f.row('10.0.0.1'))?.state, 'released');
      assert.equal(await f.commit({ kind: 'end', lease: ended, owner: k1, from: ['offered', 'bound'] }), false, 'already ended');

      await f.commit({ kind: 'claim', lease: lease('10.0.0.2', MAC1, 'bound', NOW + 600_000) });
      const declined = lease('10.0.0.2', '', 'declined', NOW + 600_000);
      assert.equal(await f.commit({ kind: 'decline', lease: declined, owner: clientKey(MAC2, null) }), false);
      assert.equal(await f.commit({ kind: 'decline', lease: declined, owner: k1 }), true);
      assert.deepEqual(await f.row('10.0.0.2'), declined);

      const at = (t: number, ip: string): LeaseWrite => ({ kind: 'reclaim', lease: lease(ip, '', 'expired', 0, { updatedAt: t }) });
      assert.equal(await f.commit(at(NOW + 599_999, '10.0.0.2')), false, 'not past its end');
      assert.equal(await f.commit(at(NOW + 600_000, '10.0.0.2')), true);
      assert.deepEqual(await f.row('10.0.0.2'), lease('10.0.0.2', '', 'expired', NOW + 600_000, { updatedAt: NOW + 600_000 }));
      assert.equal(await f.commit(at(NOW + 700_000, '10.0.0.2')), false, 'no longer held');
      assert.equal(await f.commit(at(NOW + 700_000, '10.0.0.9')), false, 'no row');
      assert.equal(await f.row('10.0.0.9'), null);
      assert.deepEqual((await f.load()).map((l) => l.ip).sort(), ['10.0.0.1', '10.0.0.2']);
      // client_key follows every write: what leaseKey() says of the row.
      const keys = await s.db.selectFrom('dhcp_leases').select(['ip', 'client_key']).orderBy('ip').execute();
      assert.deepEqual(keys, [
        { ip: '10.0.0.1', client_key: k1 },
        { ip: '10.0.0.2', client_key: clientKey('', null) },
      ]);
    });
  });
}

test('migration 20261213T1200_lease_claims fills client_key of existing rows as leaseKey() computes it', async () => {
  const { migrations } = await import('./migrations/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-lease-claims-up-'));
  try {
    // On PostgreSQL (the test command's second pass) both opens use one new database.
    const url = await testDatabaseUrl(dir);
    const old = await openStore(dir, { url, migrations: migrations.filter((m) => m.name < '20261213T1200') });
    const rows: Lease[] = [
      lease('10.0.0.1', MAC1, 'bound', NOW),
      lease('10.0.0.2', MAC2, 'bound', NOW, { clientId: '01525400000002' }),
      lease('10.0.0.3', MAC2, 'expired', NOW, { clientId: '01525400000003' }),
      lease('10.0.0.4', MAC1, 'offered', NOW, { clientId: 'ff00112233' }),
      lease('10.0.0.5', '', 'declined', NOW),
      lease('10.0.0.6', '', 'expired', NOW),
    ];
    // The table as it was: no client_key yet (so plain SQL, not the typed builder).
    for (const r of rows) {
      await sql`INSERT INTO dhcp_leases (ip, mac, client_id, state, expires_at, hostname, updated_at)
        VALUES (${r.ip}, ${r.mac}, ${r.clientId}, ${r.state}, ${r.expiresAt}, ${r.hostname}, ${r.updatedAt})`.execute(old.db);
    }
    await old.close();
    const store = await openStore(dir, { url });
    try {
      const got = await store.db.selectFrom('dhcp_leases').select(['ip', 'client_key']).orderBy('ip').execute();
      assert.deepEqual(
        got,
        rows.map((r) => ({ ip: r.ip, client_key: leaseKey(r) })),
      );
      assert.deepEqual(
        got.map((r) => r.client_key),
        [`hw:${MAC1}`, `hw:${MAC2}`, 'id:01525400000003', 'id:ff00112233', DECLINED_KEY, 'hw:'],
      );
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
