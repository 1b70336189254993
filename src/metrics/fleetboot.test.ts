import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTempStore } from '../store/temp-store.js';
import { createHost, createTask, finishTask } from '../store/index.js';
import { dhcpBootEvent, decisionBootEvent, httpBootEvent, tftpBootEvent, taskBootEvent } from '../boot/boot-events.js';
import type { LiveEvent } from '../model/events.js';
import type { FirmwareInfo } from '../boot/firmware.js';
import { answerKind, answerReason, createFleetbootMetrics, httpFetchKind } from './fleetboot.js';

const MAC = '52:54:00:12:34:56';
const FW: FirmwareInfo = { arch: 0, archSource: 'option-93', family: 'bios', httpBoot: false, ipxe: false, clientClass: 'PXEClient' };

/** The value of one sample line, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('answerKind() and answerReason() class DHCP answers into a few label values', () => {
  assert.equal(answerKind('DISCOVER -> OFFER'), 'offer');
  assert.equal(answerKind('REQUEST -> ACK'), 'ack');
  assert.equal(answerKind('REQUEST -> NAK'), 'nak');
  assert.equal(answerKind('garbage'), 'other');
  assert.equal(answerReason({ file: null }), 'no-boot-file');
  assert.equal(answerReason({ file: 'undionly.kpxe', via: 'tftp', reason: 'SeaBIOS firmware, not iPXE -> undionly.kpxe over TFTP' }), 'boot-file');
  assert.equal(answerReason({ file: 'undionly.kpxe', via: 'tftp', reason: 'BIOS PXE ROM -> menu (network: undionly.kpxe, local disk), 10 s prompt' }), 'bios-menu');
  assert.equal(answerReason({ file: 'http://10.0.0.1:8080/boot.ipxe', via: 'http', ipxe: true }), 'ipxe-script');
  assert.equal(answerReason({ file: 'http://10.0.0.1:8080/tftp/ipxe.efi', via: 'http', ipxe: false }), 'http-boot');
  assert.equal(httpFetchKind('script', '/boot.ipxe'), 'script');
  assert.equal(httpFetchKind('file', '/boot/entries/debian/vmlinuz'), 'entry-file');
  assert.equal(httpFetchKind('file', '/boot/env/initrd.img'), 'boot-env');
  assert.equal(httpFetchKind('file', '/tftp/ipxe.efi'), 'tftp-file');
  assert.equal(httpFetchKind('file', '/elsewhere'), 'other');
});

test('createFleetbootMetrics() counts boot steps, live events and reads the store and the DHCP counters when rendered', async () => {
  await withTempStore('metrics', async (store) => {
    const stats = { received: 9, replied: 4, ignored: 3, malformed: 1, sendErrors: 1 };
    let dropped = 2;
    const m = createFleetbootMetrics({ store, version: '1.2.3', bootEventsDropped: () => dropped, dhcp: () => ({ mode: 'proxy', stats }), now: () => 1_700_000_000_000 });
    m.bootStep(dhcpBootEvent({ mode: 'proxy', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'undionly.kpxe', reason: 'SeaBIOS firmware, not iPXE -> undionly.kpxe over TFTP', firmware: FW, offeredIp: null }));
    m.bootStep(dhcpBootEvent({ mode: 'proxy', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'http://10.0.0.1:8080/boot.ipxe', reason: 'iPXE', firmware: { ...FW, ipxe: true }, offeredIp: null }));
    m.bootStep(dhcpBootEvent({ mode: 'proxy', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'http://10.0.0.1:8080/boot.ipxe', reason: 'iPXE', firmware: { ...FW, ipxe: true }, offeredIp: null }));
    m.bootStep(tftpBootEvent({ ip: '10.0.0.50', file: 'undionly.kpxe', outcome: 'done', bytes: 70_000, reason: null }));
    m.bootStep(tftpBootEvent({ ip: '10.0.0.50', file: 'nothing', outcome: 'refused', bytes: 0, reason: 'File not found' }));
    m.bootStep(httpBootEvent({ ip: '10.0.0.50', mac: null, what: 'script', path: '/boot.ipxe', status: 200, bytes: 300 }));
    m.bootStep(httpBootEvent({ ip: '10.0.0.50', mac: null, what: 'file', path: '/boot/entries/deb/vmlinuz', status: 200, bytes: 5000 }));
    m.bootStep(httpBootEvent({ ip: '10.0.0.50', mac: null, what: 'file', path: '/boot/entries/deb/missing', status: 404, bytes: 60 }));
    m.bootStep(decisionBootEvent({ ip: '10.0.0.50', mac: MAC, decision: 'entry', entry: 'deb', task: null, reason: 'assigned' }));
    m.bootStep(decisionBootEvent({ ip: '10.0.0.50', mac: MAC, decision: 'something-new', entry: null, task: null, reason: 'x' }));
    m.bootStep(taskBootEvent({ task: 1, mac: MAC, type: 'deploy', from: 'queued', to: 'booting', reason: null, ip: null }));

    await createHost(store.db, { mac: MAC, name: 'pc1' });
    const t = await createTask(store.db, { type: 'inventory', mac: MAC });
    const base = { id: '1-1', at: '2026-01-01T00:00:00Z', mac: MAC };
    const progress = (bytesDone: number, rateBps: number | null): LiveEvent => ({ ...base, kind: 'task.progress', taskId: t.id, phase: 'transfer', bytesDone, bytesTotal: 10_000, partition: 1, rateBps, etaSeconds: null, message: null });
    m.liveEvent(progress(1000, null));
    m.liveEvent(progress(4000, 3000));
    let text = await m.render();
    assert.equal(sample(text, 'fleetboot_imaging_transferred_bytes_total{phase="transfer"}'), 4000);
    assert.equal(sample(text, 'fleetboot_imaging_transfer_rate_bytes_per_second'), 3000);
    assert.equal(sample(text, 'fleetboot_imaging_transfers_active'), 1);
    assert.equal(sample(text, 'fleetboot_tasks{state="queued",type="inventory"}'), 1);

    await finishTask(store.db, t.id, 'done');
    m.liveEvent({ ...base, kind: 'task.state', taskId: t.id, type: 'inventory', image: null, from: 'running', state: 'done', error: null, jobId: null });
    m.liveEvent({ id: '1-2', at: base.at, kind: 'multicast.session', sessionId: 1, jobId: 1, image: 'img', revision: 1, state: 'finished', error: null });
    dropped = 5;
    text = await m.render();

    assert.match(text, /^# HELP fleetboot_build_info /m);
    assert.equal(sample(text, 'fleetboot_build_info{version="1.2.3"}'), 1);
    assert.equal(sample(text, 'fleetboot_start_time_seconds'), 1_700_000_000);
    assert.equal(sample(text, 'fleetboot_dhcp_answers_total{kind="offer",mode="proxy",port="dhcp",reason="boot-file"}'), 1);
    assert.equal(sample(text, 'fleetboot_dhcp_answers_total{kind="offer",mode="proxy",port="dhcp",reason="ipxe-script"}'), 2);
    assert.equal(sample(text, 'fleetboot_dhcp_packets_total{mode="proxy",result="ignored"}'), 3);
    assert.equal(sample(text, 'fleetboot_dhcp_packets_total{mode="proxy",result="send-error"}'), 1);
    assert.equal(sample(text, 'fleetboot_tftp_transfers_total{outcome="done"}'), 1);
    assert.equal(sample(text, 'fleetboot_tftp_transfers_total{outcome="refused"}'), 1);
    assert.equal(sample(text, 'fleetboot_tftp_sent_bytes_total{outcome="done"}'), 70_000);
    assert.equal(sample(text, 'fleetboot_http_boot_requests_total{kind="script",status="2xx"}'), 1);
    assert.equal(sample(text, 'fleetboot_http_boot_requests_total{kind="entry-file",status="2xx"}'), 1);
    assert.equal(sample(text, 'fleetboot_http_boot_requests_total{kind="entry-file",status="4xx"}'), 1);
    assert.equal(sample(text, 'fleetboot_http_boot_sent_bytes_total{kind="entry-file"}'), 5000, 'a 404 body is not a file sent');
    assert.equal(sample(text, 'fleetboot_http_boot_decisions_total{decision="entry"}'), 1);
    assert.equal(sample(text, 'fleetboot_http_boot_decisions_total{decision="other"}'), 1, 'an unknown decision is not a new label value');
    assert.equal(sample(text, 'fleetboot_boot_events_dropped_total'), 5);
    assert.equal(sample(text, 'fleetboot_tasks{state="done",type="inventory"}'), 1);
    assert.equal(sample(text, 'fleetboot_tasks_ended_total{state="done",type="inventory"}'), 1);
    assert.equal(sample(text, 'fleetboot_imaging_transfers_active'), 0, 'an ended task no longer counts');
    assert.equal(sample(text, 'fleetboot_imaging_transfer_rate_bytes_per_second'), 0);
    assert.equal(sample(text, 'fleetboot_multicast_sessions_ended_total{state="finished"}'), 1);
    assert.match(text, /^# TYPE fleetboot_multicast_sessions gauge$/m);
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0);
    // Every sample line belongs to the family announced above it.
    let family = '';
    for (const line of text.trimEnd().split('\n')) {
      const typed = /^# TYPE (\S+) (counter|gauge)$/.exec(line);
      if (typed) family = typed[1] ?? '';
      else if (!line.startsWith('#')) assert.ok(line.startsWith(family), `${line} is not in ${family}`);
    }
  });
});

test('createFleetbootMetrics(): no DHCP service, no packet samples; a progress report going backwards counts from its new start', async () => {
  await withTempStore('metrics', async (store) => {
    const m = createFleetbootMetrics({ store, version: 'x', bootEventsDropped: () => 0, dhcp: () => null });
    const base = { id: '1-1', at: '2026-01-01T00:00:00Z', mac: MAC, kind: 'task.progress' as const, taskId: 7, phase: 'transfer' as const, bytesTotal: null, partition: null, rateBps: null, etaSeconds: null, message: null };
    m.liveEvent({ ...base, bytesDone: 5000 });
    m.liveEvent({ ...base, bytesDone: 1000 });
    m.liveEvent({ ...base, bytesDone: 1500 });
    const text = await m.render();
    assert.equal(sample(text, 'fleetboot_imaging_transferred_bytes_total{phase="transfer"}'), 6500);
    assert.doesNotMatch(text, /^fleetboot_dhcp_packets_total/m);
    assert.doesNotMatch(text, /^fleetboot_dhcp_lease_conflicts_total/m);
  });
});

test("createFleetbootMetrics(): the DHCP server's lease conflicts (servers sharing a store)", async () => {
  await withTempStore('metrics', async (store) => {
    const stats = { received: 9, replied: 4, ignored: 3, malformed: 1, sendErrors: 1, lostWrites: 5, gaveUp: 1, overloaded: 0 };
    const m = createFleetbootMetrics({ store, version: 'x', bootEventsDropped: () => 0, dhcp: () => ({ mode: 'server', stats }) });
    const text = await m.render();
    assert.equal(sample(text, 'fleetboot_dhcp_lease_conflicts_total{result="lost-write"}'), 5);
    assert.equal(sample(text, 'fleetboot_dhcp_lease_conflicts_total{result="gave-up"}'), 1);
    assert.equal(sample(text, 'fleetboot_dhcp_lease_conflicts_total{result="queue-full"}'), 0);
  });
});
