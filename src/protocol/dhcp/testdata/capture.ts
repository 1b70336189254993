/**
 * Regenerates the DHCP fixtures in this directory from real PXE clients.
 *
 *   node --import tsx src/protocol/dhcp/testdata/capture.ts            # capture (root, ~3.5 min under TCG) + extract
 *   node --import tsx src/protocol/dhcp/testdata/capture.ts ovmf-http  # only the named runs (others keep their pcap)
 *   node --import tsx src/protocol/dhcp/testdata/capture.ts extract    # only re-extract *.hex from captures/*.pcap
 *
 * Capture: a lab (bridge namespace + two hosts): dnsmasq handing out
 * addresses only (10.213.61.2), and a proxyDHCP at 10.213.61.3, started for
 * each run: dnsmasq as proxyDHCP + TFTP with a pxe-service menu (the
 * topology Fleetboot replaces), or Fleetboot itself (`fleetboot serve
 * --dhcp proxy`) where dnsmasq's proxy cannot serve the client. tcpdump on
 * the bridge records UDP 67/68/4011 while QEMU guests boot on a tap:
 *   seabios-ipxe  SeaBIOS + QEMU's iPXE ROM (pxe-e1000.rom)
 *   ovmf-edk2     OVMF's own PXE stack (virtio-net, no ROM), then the
 *                 snponly.efi it chainloads (iPXE, second DISCOVER)
 *   ovmf-ipxe     OVMF + iPXE's EFI ROM (efi-e1000.rom)
 *   ovmf-http     OVMF's UEFI HTTP boot (edk2 HttpBootDxe; virtio-net, no
 *                 ROM), HTTPv4 as the only boot option (fw_cfg knobs below),
 *                 then the snponly.efi it downloads over HTTP (iPXE).
 *                 Proxy: Fleetboot, which answers HTTPClient with a URL and
 *                 serves that URL; dnsmasq's proxy mode gives no HTTP-boot
 *                 URL and has no HTTP server. So the proxy replies of this
 *                 run are Fleetboot's, recorded because edk2 accepted them.
 * Extract: every distinct (sender, message type, ports, iPXE or not) packet
 * of each capture becomes NAME.hex: the UDP payload as commented hex.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Lab } from '../../../../test/lab/lab.js';
import { startFleetboot } from '../../../../test/lab/bootenv/services.js';
import { chooseAccel } from '../../../../test/lab/qemu.js';
import { decodePacket } from '../packet.js';
import { messageType, messageTypeName, userClass, getOption, vendorClassId } from '../options.js';

const here = dirname(fileURLToPath(import.meta.url));
const pcapDir = join(here, 'captures');
const SUBNET = '10.213.61';

interface Run {
  name: string;
  title: string;
  mac: string;
  seconds: number;
  /** Who answers as proxyDHCP at .3 during this run. */
  proxy: 'dnsmasq' | 'fleetboot';
  qemu: (tap: string, vars: string) => string[];
}

/**
 * OVMF reads these from fw_cfg (edk2 OvmfPkg/RUNTIME_CONFIG.md; Debian's
 * OVMF 2022.11 honours both): with PXE over IPv4 and all of IPv6 off, the
 * NIC's only boot option is "UEFI HTTPv4", so the guest HTTP-boots and
 * never PXE-boots. test/lab/httpboot.e2e.test.ts uses the same two.
 */
const OVMF_HTTP_ONLY = ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no', '-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=no'];

const RUNS: Run[] = [
  {
    name: 'seabios-ipxe',
    title: 'SeaBIOS + QEMU iPXE ROM (pxe-e1000.rom), BIOS',
    mac: '52:54:00:fb:61:01',
    seconds: 25,
    proxy: 'dnsmasq',
    qemu: (tap) => [
      '-m', '256', '-boot', 'n',
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device', 'e1000,netdev=n0,mac=52:54:00:fb:61:01,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom',
    ],
  },
  {
    name: 'ovmf-edk2',
    title: 'OVMF UEFI x64, edk2 PXE (virtio-net, no option ROM)',
    mac: '52:54:00:fb:61:02',
    seconds: 60,
    proxy: 'dnsmasq',
    qemu: (tap, vars) => [
      '-machine', 'q35', '-m', '256',
      '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      '-drive', `if=pflash,format=raw,file=${vars}`,
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:fb:61:02,romfile=',
    ],
  },
  {
    name: 'ovmf-ipxe',
    title: 'OVMF UEFI x64 + iPXE EFI ROM (efi-e1000.rom)',
    mac: '52:54:00:fb:61:03',
    seconds: 40,
    proxy: 'dnsmasq',
    qemu: (tap, vars) => [
      '-machine', 'q35', '-m', '256',
      '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      '-drive', `if=pflash,format=raw,file=${vars}`,
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device', 'e1000,netdev=n0,mac=52:54:00:fb:61:03,romfile=/usr/lib/ipxe/qemu/efi-e1000.rom',
    ],
  },
  {
    name: 'ovmf-http',
    title: 'OVMF UEFI x64, edk2 HTTP boot (virtio-net, no option ROM, HTTPv4 only)',
    mac: '52:54:00:fb:61:04',
    seconds: 40,
    proxy: 'fleetboot',
    qemu: (tap, vars) => [
      '-machine', 'q35', '-m', '256',
      '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      '-drive', `if=pflash,format=raw,file=${vars}`,
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:fb:61:04,romfile=',
      ...OVMF_HTTP_ONLY,
    ],
  },
];

/** Proxy reply label per run, for the fixtures' comments. */
const PROXY_ROLE: Record<Run['proxy'], string> = {
  dnsmasq: 'dnsmasq 2.90 proxyDHCP reply (pxe-service menu)',
  fleetboot: 'Fleetboot proxyDHCP reply (src/net/proxy-dhcp.ts at capture time), accepted by the client',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function capture(only: string[]): Promise<void> {
  mkdirSync(pcapDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'fb-capture-'));
  const tftp = join(work, 'tftp');
  mkdirSync(tftp);
  // dnsmasq's pxe-service appends ".<layer>" to the base name; keep both spellings.
  for (const [src, names] of [
    ['/usr/lib/ipxe/undionly.kpxe', ['undionly.kpxe', 'undionly.0']],
    ['/usr/lib/ipxe/snponly.efi', ['snponly.efi', 'snponly.0']],
  ] as const) {
    for (const n of names) copyFileSync(src, join(tftp, n));
  }
  // qemu.ts's probe: KVM only when it really boots a guest here (FBTEST_ACCEL=kvm|tcg overrides).
  // Merely opening /dev/kvm is not enough on this project's CI machine: OVMF dies there
  // with "emulation failure" under KVM.
  const acc = await chooseAccel();
  console.log(`accelerator: ${acc}`);
  const lab = await Lab.create({ subnet: SUBNET });
  try {
    const dhcp = await lab.addHost('dhcp', `${SUBNET}.2`);
    const pxe = await lab.addHost('pxe', `${SUBNET}.3`);
    const common = ['-k', '--conf-file=/dev/null', '--port=0', '--log-dhcp', '--log-facility=-', '--leasefile-ro', '--user=root', '--pid-file'];
    const logTo = (c: ChildProcess, file: string): void => {
      c.stdout?.on('data', (b: Buffer) => writeFileSync(file, b, { flag: 'a' }));
      c.stderr?.on('data', (b: Buffer) => writeFileSync(file, b, { flag: 'a' }));
    };
    logTo(lab.spawnIn(dhcp.netns, ['dnsmasq', ...common, `--dhcp-range=${SUBNET}.100,${SUBNET}.199,255.255.255.0,10m`]), join(work, 'dnsmasq-dhcp.log'));
    /** The run's proxyDHCP at .3; resolves to the process to stop after the run. */
    const startProxy = async (run: Run): Promise<ChildProcess> => {
      if (run.proxy === 'fleetboot') {
        const fb = await startFleetboot(lab, 'pxe', { dataDir: join(work, `fleetboot-${run.name}`), serverIp: pxe.ip });
        fb.log.child.on('exit', () => writeFileSync(join(work, `fleetboot-${run.name}.log`), fb.log.all()));
        return fb.log.child;
      }
      const d2 = lab.spawnIn(pxe.netns, [
        'dnsmasq', ...common,
        `--dhcp-range=${SUBNET}.0,proxy`,
        '--enable-tftp', `--tftp-root=${tftp}`,
        '--dhcp-userclass=set:ipxe,iPXE',
        `--dhcp-boot=tag:ipxe,http://${SUBNET}.3/boot.ipxe`,
        '--pxe-service=tag:!ipxe,x86PC,"Network boot",undionly',
        '--pxe-service=tag:!ipxe,x86-64_EFI,"Network boot",snponly',
        '--pxe-prompt=tag:!ipxe,"Press F8 for menu",2',
      ]);
      logTo(d2, join(work, 'dnsmasq-pxe.log'));
      await sleep(500);
      return d2;
    };
    const stop = async (c: ChildProcess): Promise<void> => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([gone, sleep(5000)]);
    };
    await sleep(500);
    const tap = await lab.addTap();
    for (const run of RUNS) {
      if (only.length && !only.includes(run.name)) continue;
      const proxy = await startProxy(run);
      const pcap = join(pcapDir, `${run.name}.pcap`);
      const vars = join(work, `${run.name}-vars.fd`);
      copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
      const dump = lab.spawnIn(lab.bridgeNs, ['tcpdump', '-i', 'br0', '-U', '-n', '-s', '0', '-w', pcap, 'udp port 67 or udp port 68 or udp port 4011']);
      await sleep(1000);
      console.log(`${run.name}: booting for ${run.seconds} s`);
      const q = lab.spawnIn(lab.bridgeNs, [
        'qemu-system-x86_64', '-accel', acc, '-nodefaults', '-display', 'none',
        '-serial', `file:${join(work, `${run.name}.serial`)}`,
        ...run.qemu(tap, vars),
      ]);
      q.stderr?.on('data', (b: Buffer) => process.stderr.write(`[qemu ${run.name}] ${b.toString()}`));
      await sleep(run.seconds * 1000);
      q.kill('SIGKILL');
      await sleep(500);
      dump.kill('SIGINT');
      await stop(proxy);
      await sleep(1000);
      console.log(`${run.name}: ${pcap}`);
    }
    console.log(`logs and serial output kept in ${work}`);
  } finally {
    await lab.destroy();
  }
}

/** Minimal pcap reader: Ethernet / IPv4 / UDP payloads. */
function* udpPayloads(file: string): Generator<{ src: string; dst: string; sport: number; dport: number; payload: Buffer }> {
  const b = readFileSync(file);
  if (b.length < 24) return;
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${file}: not a pcap file`);
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`${file}: link type ${u32(20)}, expected Ethernet`);
  let o = 24;
  while (o + 16 <= b.length) {
    const incl = u32(o + 8);
    const f = b.subarray(o + 16, o + 16 + incl);
    o += 16 + incl;
    if (f.length < 14 + 20 + 8 || f.readUInt16BE(12) !== 0x0800) continue;
    const ip = 14;
    const ihl = ((f[ip] as number) & 0x0f) * 4;
    if (f[ip + 9] !== 17) continue;
    const totalLen = f.readUInt16BE(ip + 2);
    const udp = ip + ihl;
    const udpLen = f.readUInt16BE(udp + 4);
    const end = Math.min(f.length, ip + totalLen, udp + udpLen);
    const addr = (at: number) => `${f[at]}.${f[at + 1]}.${f[at + 2]}.${f[at + 3]}`;
    yield { src: addr(ip + 12), dst: addr(ip + 16), sport: f.readUInt16BE(udp), dport: f.readUInt16BE(udp + 2), payload: Buffer.from(f.subarray(udp + 8, end)) };
  }
}

function extract(): void {
  for (const f of readdirSync(here)) if (f.endsWith('.hex')) unlinkSync(join(here, f));
  const date = new Date().toISOString().slice(0, 10);
  for (const run of RUNS) {
    const pcap = join(pcapDir, `${run.name}.pcap`);
    if (!existsSync(pcap)) {
      console.log(`${run.name}: no capture`);
      continue;
    }
    const seen = new Set<string>();
    let n = 0;
    for (const u of udpPayloads(pcap)) {
      let p;
      try {
        p = decodePacket(u.payload);
      } catch (err) {
        console.log(`${run.name}: undecodable packet skipped: ${(err as Error).message}`);
        continue;
      }
      const mt = messageTypeName(messageType(p)).toLowerCase();
      const ipxe = userClass(p)?.includes('iPXE') || getOption(p, 175) !== undefined;
      const who = p.op === 1 ? (ipxe ? 'ipxe' : 'client') : u.src === `${SUBNET}.3` ? 'proxy' : 'dhcpd';
      const key = `${who}-${mt}-${u.sport}-${u.dport}`;
      if (seen.has(key)) continue;
      seen.add(key);
      n++;
      const name = `${run.name}-${String(n).padStart(2, '0')}-${who}-${mt}-${u.dport}`;
      const role =
        who === 'proxy' ? PROXY_ROLE[run.proxy] :
        who === 'dhcpd' ? 'dnsmasq 2.90 address-only DHCP server reply' :
        who === 'ipxe' ? 'sent by iPXE' :
        vendorClassId(p)?.startsWith('HTTPClient') ? 'sent by the firmware HTTP boot client' : 'sent by the firmware PXE stack';
      const lines = [
        `# ${run.title}`,
        `# ${mt.toUpperCase()} ${role}`,
        `# ${u.src}:${u.sport} -> ${u.dst}:${u.dport}, ${u.payload.length} bytes UDP payload`,
        `# captured from captures/${run.name}.pcap by capture.ts (extracted ${date})`,
      ];
      const hex = u.payload.toString('hex');
      for (let i = 0; i < hex.length; i += 32) lines.push(hex.slice(i, i + 32).replace(/(..)(?!$)/g, '$1 '));
      writeFileSync(join(here, `${name}.hex`), lines.join('\n') + '\n');
      console.log(`${name}.hex`);
    }
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'extract') {
  extract();
} else {
  await capture(mode ? [mode, ...rest] : []);
  extract();
}
