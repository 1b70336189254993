/**
 * Regenerates the DHCP fixtures in this directory from real PXE clients.
 *
 *   node --import tsx src/protocol/dhcp/testdata/capture.ts            # capture (root, ~2.5 min) + extract
 *   node --import tsx src/protocol/dhcp/testdata/capture.ts extract    # only re-extract *.hex from captures/*.pcap
 *
 * Capture: a lab (bridge namespace + two hosts): dnsmasq handing out
 * addresses only (10.213.61.2), and dnsmasq as proxyDHCP + TFTP with a
 * pxe-service menu (10.213.61.3), the topology Fleetboot replaces. tcpdump
 * on the bridge records UDP 67/68/4011 while QEMU guests boot on a tap:
 *   seabios-ipxe  SeaBIOS + QEMU's iPXE ROM (pxe-e1000.rom)
 *   ovmf-edk2     OVMF's own PXE stack (virtio-net, no ROM), then the
 *                 snponly.efi it chainloads (iPXE, second DISCOVER)
 *   ovmf-ipxe     OVMF + iPXE's EFI ROM (efi-e1000.rom)
 * Extract: every distinct (sender, message type, ports, iPXE or not) packet
 * of each capture becomes NAME.hex: the UDP payload as commented hex.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../../../test/lab/lab.js';
import { decodePacket } from '../packet.js';
import { messageType, messageTypeName, userClass, getOption } from '../options.js';

const here = dirname(fileURLToPath(import.meta.url));
const pcapDir = join(here, 'captures');
const SUBNET = '10.213.61';

interface Run {
  name: string;
  title: string;
  mac: string;
  seconds: number;
  qemu: (tap: string, vars: string) => string[];
}

const RUNS: Run[] = [
  {
    name: 'seabios-ipxe',
    title: 'SeaBIOS + QEMU iPXE ROM (pxe-e1000.rom), BIOS',
    mac: '52:54:00:fb:61:01',
    seconds: 25,
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
    qemu: (tap, vars) => [
      '-machine', 'q35', '-m', '256',
      '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      '-drive', `if=pflash,format=raw,file=${vars}`,
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device', 'e1000,netdev=n0,mac=52:54:00:fb:61:03,romfile=/usr/lib/ipxe/qemu/efi-e1000.rom',
    ],
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** 'kvm' when QEMU can open it (it then runs until the 2 s timeout kills it), else 'tcg'. */
function accel(): string {
  try {
    execFileSync('qemu-system-x86_64', ['-accel', 'kvm', '-machine', 'none', '-nodefaults', '-display', 'none'], { stdio: 'ignore', timeout: 2000 });
    return 'tcg'; // exited by itself: it failed
  } catch (err) {
    return (err as { code?: string }).code === 'ETIMEDOUT' ? 'kvm' : 'tcg';
  }
}

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
  const acc = accel();
  console.log(`accelerator: ${acc}`);
  const lab = await Lab.create({ subnet: SUBNET });
  try {
    const dhcp = await lab.addHost('dhcp', `${SUBNET}.2`);
    const pxe = await lab.addHost('pxe', `${SUBNET}.3`);
    const common = ['-k', '--conf-file=/dev/null', '--port=0', '--log-dhcp', '--log-facility=-', '--leasefile-ro', '--user=root', '--pid-file'];
    const d1 = lab.spawnIn(dhcp.netns, ['dnsmasq', ...common, `--dhcp-range=${SUBNET}.100,${SUBNET}.199,255.255.255.0,10m`]);
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
    for (const [n, c] of [['dhcp', d1], ['pxe', d2]] as const) {
      const log = join(work, `dnsmasq-${n}.log`);
      c.stdout?.on('data', (b: Buffer) => writeFileSync(log, b, { flag: 'a' }));
      c.stderr?.on('data', (b: Buffer) => writeFileSync(log, b, { flag: 'a' }));
    }
    await sleep(500);
    const tap = await lab.addTap();
    for (const run of RUNS) {
      if (only.length && !only.includes(run.name)) continue;
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
        who === 'proxy' ? 'dnsmasq 2.90 proxyDHCP reply (pxe-service menu)' :
        who === 'dhcpd' ? 'dnsmasq 2.90 address-only DHCP server reply' :
        who === 'ipxe' ? 'sent by iPXE' : 'sent by the firmware PXE stack';
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
