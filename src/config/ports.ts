/**
 * The ports Fleetboot listens on, derived from the live configuration, and the
 * firewall rules that let clients reach them. `fleetboot ports` and
 * `fleetboot firewall --for FLAVOR` print these.
 */
import type { FleetbootConfig } from './config.js';
import { parseMulticastPorts } from '../model/multicast.js';

export interface PortUse {
  proto: 'udp' | 'tcp';
  /** A single port, or a range [from, to]. `null` means "ephemeral ports chosen by the kernel". */
  port: number | [number, number] | null;
  service: string;
  why: string;
  /** The config key that changes it. */
  setting: string;
}

export function requiredPorts(c: Readonly<FleetbootConfig>): PortUse[] {
  const out: PortUse[] = [];
  if (c.dhcp.mode === 'proxy') {
    out.push({ proto: 'udp', port: c.dhcp.port, service: 'proxyDHCP', why: 'answers PXE clients\u2019 DHCPDISCOVER (broadcast, or unicast from a relay)', setting: 'dhcp.port' });
  } else if (c.dhcp.mode === 'server') {
    out.push({ proto: 'udp', port: c.dhcp.port, service: 'DHCP server', why: 'leases for every client (broadcast, or unicast from a relay or a renewing client)', setting: 'dhcp.port' });
  }
  if (c.dhcp.mode !== 'off') {
    out.push({ proto: 'udp', port: c.dhcp.pxePort, service: 'PXE boot server', why: 'boot-server discovery (DHCPREQUEST to 4011)', setting: 'dhcp.pxePort' });
  }
  if (c.tftp.enabled) {
    out.push({ proto: 'udp', port: c.tftp.port, service: 'TFTP', why: 'read requests for the iPXE binaries', setting: 'tftp.port' });
    const dp = c.tftp.dataPorts;
    out.push({
      proto: 'udp',
      port: dp === null ? null : dp.from === dp.to ? dp.from : [dp.from, dp.to],
      service: 'TFTP data',
      why: dp === null ? 'one ephemeral port per transfer (set tftp.dataPorts to pin a range)' : 'one port per transfer',
      setting: 'tftp.dataPorts',
    });
  }
  const mp = parseMulticastPorts(c.multicast.ports);
  if (mp) {
    out.push({
      proto: 'udp',
      port: mp.from === mp.to ? mp.from : [mp.from, mp.to],
      service: 'multicast sessions',
      why: `one port per running session: receivers' joins, status and repair requests (the data goes to ${c.multicast.addresses} on the same port; receivers must accept it)`,
      setting: 'multicast.ports',
    });
  }
  out.push({ proto: 'tcp', port: c.http.port, service: 'HTTP', why: 'iPXE scripts, kernels and initrds, UEFI HTTP boot, the imaging boot environment and image transfers, the REST API', setting: 'http.port' });
  return out;
}

export type FirewallFlavor = 'nft' | 'iptables' | 'ufw' | 'firewalld';
export const FIREWALL_FLAVORS: readonly FirewallFlavor[] = ['nft', 'iptables', 'ufw', 'firewalld'];

function portText(p: PortUse['port'], sep: string): string {
  if (p === null) return `32768${sep}60999`;
  return Array.isArray(p) ? `${p[0]}${sep}${p[1]}` : String(p);
}

/** Shell lines that open what Fleetboot needs, for the chosen firewall. */
export function firewallRules(c: Readonly<FleetbootConfig>, flavor: FirewallFlavor): string[] {
  const ports = requiredPorts(c);
  const lines: string[] = [];
  const note = (p: PortUse): string => `# ${p.service}: ${p.why}${p.port === null ? ' (Linux default ephemeral range)' : ''}`;
  for (const p of ports) {
    lines.push(note(p));
    switch (flavor) {
      case 'nft':
        lines.push(`nft add rule inet filter input ${p.proto} dport ${portText(p.port, '-')} accept`);
        break;
      case 'iptables':
        lines.push(`iptables -A INPUT -p ${p.proto} --dport ${portText(p.port, ':')} -j ACCEPT`);
        break;
      case 'ufw':
        lines.push(`ufw allow ${portText(p.port, ':')}/${p.proto}`);
        break;
      case 'firewalld':
        lines.push(`firewall-cmd --permanent --add-port=${portText(p.port, '-')}/${p.proto}`);
        break;
    }
  }
  if (flavor === 'firewalld') lines.push('firewall-cmd --reload');
  return lines;
}
