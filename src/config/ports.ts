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

/** A port, or an inclusive range [from, to]. */
export type PortSpec = number | [number, number];

/**
 * Where "ephemeral" ports (`port: null`) are, by the system the server runs
 * on: Linux's default `net.ipv4.ip_local_port_range`, and the dynamic range
 * Windows uses since Vista and Server 2008 (`netsh int ipv4 show dynamicport
 * udp`). A site that changed its range opens the wrong ports with these
 * rules; pinning tftp.dataPorts avoids both the guess and the wide opening.
 */
export const EPHEMERAL_PORTS = { linux: [32768, 60999], windows: [49152, 65535] } as const;
export type PortPlatform = keyof typeof EPHEMERAL_PORTS;

/** `port` as a rule opens it on `platform`: ephemeral (null) becomes that system's default range. */
export function concretePort(port: PortSpec | null, platform: PortPlatform): PortSpec {
  if (port !== null) return port;
  const [from, to] = EPHEMERAL_PORTS[platform];
  return [from, to];
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
      why: dp === null ? 'one ephemeral port per transfer (set tftp.dataPorts to pin a range)' : dp.from === dp.to ? 'one port that every transfer shares' : 'one port per transfer',
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
  if (c.https.enabled) {
    out.push({ proto: 'tcp', port: c.https.port, service: 'HTTPS', why: 'the REST API, the web console and the endpoint agents, over TLS', setting: 'https.port' });
  }
  return out;
}

/**
 * What the server sends that connection tracking does not take for a reply:
 * what a machine that also filters its own output (policy drop on output)
 * must let out, besides the replies to what requiredPorts() lets in (HTTP,
 * TFTP errors to a request, multicast control answers), which leave as
 * established.
 */
export interface OutboundUse {
  proto: 'udp';
  /** 'sport': the server's own port (the port of its socket); 'dport': the port it sends to. */
  match: 'sport' | 'dport';
  /** `null` means "ephemeral ports chosen by the kernel" (see `helper`). */
  port: PortSpec | null;
  /**
   * A conntrack helper that can mark this traffic related instead of a port
   * rule: its kernel name, and the port of the requests it reads.
   */
  helper: { name: 'tftp'; requestPort: number } | null;
  service: string;
  why: string;
  /** The config key that changes it. */
  setting: string;
}

export function outboundPorts(c: Readonly<FleetbootConfig>): OutboundUse[] {
  const out: OutboundUse[] = [];
  if (c.dhcp.mode !== 'off') {
    // A client without an address asks from 0.0.0.0:68 to 255.255.255.255:67;
    // the answer goes to 255.255.255.255:68 or to the offered address, a
    // tuple conntrack has not seen (src/net/dhcp-sockets.ts dhcpReplier).
    const why = 'answers go to 255.255.255.255:68 or to the offered address, not back to where the request came from (0.0.0.0:68), so they are no reply to a firewall';
    out.push({ proto: 'udp', match: 'sport', port: c.dhcp.port, helper: null, service: c.dhcp.mode === 'proxy' ? 'proxyDHCP replies' : 'DHCP server replies', why, setting: 'dhcp.port' });
    // Not dhcp.pxePort: the answer to a boot-server REQUEST on 4011 goes back
    // to the address and port it came from (src/boot/proxy-answer.ts
    // destination()), which conntrack takes for a reply. The requests are
    // unicast to the server that offered (every captured client does so:
    // ovmf-edk2-06, ovmf-ipxe-08, seabios-ipxe-06 in src/protocol/dhcp/testdata),
    // and Fleetboot announces no multicast discovery address.
    // test/lab/firewall.e2e.test.ts shows them answered behind an output
    // policy of drop with no rule for 4011.
  }
  if (c.tftp.enabled) {
    const dp = c.tftp.dataPorts;
    out.push({
      proto: 'udp',
      match: 'sport',
      port: dp === null ? null : dp.from === dp.to ? dp.from : [dp.from, dp.to],
      helper: { name: 'tftp', requestPort: c.tftp.port },
      service: 'TFTP data',
      why: `each transfer leaves from a port of its own (the server's TID, RFC 1350: ${dp === null ? 'any ephemeral port' : 'one of tftp.dataPorts'}), not from the port the request came to, so it is no reply to a firewall`,
      setting: 'tftp.dataPorts',
    });
  }
  const mp = parseMulticastPorts(c.multicast.ports);
  if (mp) {
    out.push({
      proto: 'udp',
      match: 'sport',
      port: mp.from === mp.to ? mp.from : [mp.from, mp.to],
      helper: null,
      service: 'multicast sessions',
      why: `announcements and data go from the session port to the session group (in ${c.multicast.addresses}), an address no receiver sends from`,
      setting: 'multicast.ports',
    });
  }
  out.push({ proto: 'udp', match: 'dport', port: c.wake.port, helper: null, service: 'Wake-on-LAN', why: 'magic packets to broadcast addresses, which nothing answers', setting: 'wake.port' });
  return out;
}
