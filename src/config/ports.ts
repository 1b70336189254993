/**
 * The ports Fleetboot listens on, derived from the live configuration: the
 * single source of `fleetboot ports` and of every rule set that
 * `fleetboot firewall --for FLAVOR` prints (src/config/firewall.ts).
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
