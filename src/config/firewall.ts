/**
 * The firewall rules that let clients reach Fleetboot, for the firewall the
 * administrator runs (`fleetboot firewall --for FLAVOR`). Every rule set is
 * rendered from requiredPorts() (src/config/ports.ts) and nothing else, so
 * no flavor opens a port the others do not; the one difference between
 * systems is where "ephemeral" is (concretePort()).
 */
import type { FleetbootConfig } from './config.js';
import { concretePort, EPHEMERAL_PORTS, requiredPorts, type PortPlatform, type PortSpec, type PortUse } from './ports.js';

export const FIREWALL_FLAVORS = ['nft', 'iptables', 'ufw', 'firewalld', 'windows'] as const;
export type FirewallFlavor = (typeof FIREWALL_FLAVORS)[number];

/** The system a flavor's rules run on, which decides where ephemeral ports are. */
export function flavorPlatform(flavor: FirewallFlavor): PortPlatform {
  return flavor === 'windows' ? 'windows' : 'linux';
}

function portText(p: PortSpec, sep: string): string {
  return Array.isArray(p) ? `${p[0]}${sep}${p[1]}` : String(p);
}

const EPHEMERAL_NOTE: Record<PortPlatform, string> = {
  linux: ' (Linux default ephemeral range)',
  windows: ` (Windows default dynamic port range ${EPHEMERAL_PORTS.windows[0]}-${EPHEMERAL_PORTS.windows[1]})`,
};

/** The comment above an input rule: what the port is for, and where "ephemeral" is. */
function note(p: PortUse, platform: PortPlatform): string {
  return `# ${p.service}: ${p.why}${p.port === null ? EPHEMERAL_NOTE[platform] : ''}`;
}

// ---- nft -------------------------------------------------------------------

function nftInput(p: PortUse): string {
  return `nft add rule inet filter input ${p.proto} dport ${portText(concretePort(p.port, 'linux'), '-')} accept`;
}

// ---- iptables --------------------------------------------------------------

function iptablesInput(p: PortUse): string {
  return `iptables -A INPUT -p ${p.proto} --dport ${portText(concretePort(p.port, 'linux'), ':')} -j ACCEPT`;
}

// ---- ufw -------------------------------------------------------------------

function ufwInput(p: PortUse): string {
  return `ufw allow ${portText(concretePort(p.port, 'linux'), ':')}/${p.proto}`;
}

// ---- firewalld -------------------------------------------------------------

function firewalldInput(p: PortUse): string {
  return `firewall-cmd --permanent --add-port=${portText(concretePort(p.port, 'linux'), '-')}/${p.proto}`;
}

// ---- Windows ---------------------------------------------------------------
//
// PowerShell's New-NetFirewallRule (NetSecurity module) first, in a group
// "Fleetboot" so that Remove-NetFirewallRule -Group removes them all, then
// the same rules for netsh, which has no groups: they are named
// "Fleetboot ..." and deleted by name. The netsh block sits in a PowerShell
// block comment, so the whole output runs as one PowerShell script creating
// one set of rules, and its lines can still be pasted into cmd.exe as they
// are. Rules go by port and protocol, never by program: a rule on node.exe
// breaks at the next Node.js update (its path changes), and would open any
// port to every other program that node.exe runs.
//
// Multicast needs no IGMP rule: the server sends to a session's group
// without joining it (no membership, so no IGMP report, and an IGMP query
// needs no answer from a non-member), and the receivers answer by unicast to
// the session port, which its UDP rule lets in. The receivers are the
// clients; their own IGMP is theirs.

const GROUP = 'Fleetboot';

/**
 * `s` in double quotes, read the same by PowerShell and cmd.exe. Only text
 * that needs no escaping in either is accepted ($ and ` expand in
 * PowerShell, % and ^ in cmd): anything else is a programming error here.
 */
function winQuote(s: string): string {
  if (!/^[A-Za-z0-9 ().,-]+$/.test(s)) throw new TypeError(`cannot quote ${JSON.stringify(s)} for PowerShell and cmd.exe: expected letters, digits, spaces and ().,-`);
  return `"${s}"`;
}

interface WinRule {
  id: string;
  displayName: string;
  direction: 'in' | 'out';
  proto: 'UDP' | 'TCP';
  /** LocalPort (our port) or RemotePort (the port we send to). */
  portKind: 'local' | 'remote';
  port: string;
  comment: string;
}

function winRule(p: { service: string; why: string; proto: 'udp' | 'tcp'; port: PortSpec | null }, direction: 'in' | 'out', portKind: 'local' | 'remote', comment: string): WinRule {
  const proto = p.proto === 'udp' ? 'UDP' : 'TCP';
  const port = portText(concretePort(p.port, 'windows'), '-');
  const suffix = direction === 'out' ? ' out' : '';
  return {
    id: `${GROUP}-${p.service.replace(/ /g, '-')}${direction === 'out' ? '-out' : ''}`,
    displayName: `${GROUP} ${p.service} (${proto} ${port}${suffix})`,
    direction,
    proto,
    portKind,
    port,
    comment,
  };
}

function powershellLine(r: WinRule): string {
  return [
    'New-NetFirewallRule',
    `-Name ${winQuote(r.id)}`,
    `-DisplayName ${winQuote(r.displayName)}`,
    `-Group ${winQuote(GROUP)}`,
    `-Direction ${r.direction === 'in' ? 'Inbound' : 'Outbound'}`,
    '-Action Allow',
    `-Protocol ${r.proto}`,
    `-${r.portKind === 'local' ? 'LocalPort' : 'RemotePort'} ${r.port}`,
  ].join(' ');
}

function netshLine(r: WinRule): string {
  return `netsh advfirewall firewall add rule name=${winQuote(r.displayName)} dir=${r.direction} action=allow protocol=${r.proto} ${r.portKind === 'local' ? 'localport' : 'remoteport'}=${r.port}`;
}

function windowsRules(c: Readonly<FleetbootConfig>): string[] {
  const rules = requiredPorts(c).map((p) => winRule(p, 'in', 'local', note(p, 'windows')));
  const lines = [
    '# Fleetboot: Windows Firewall rules for the ports this configuration uses.',
    '# Run them in PowerShell as an administrator (elevated). Each rule opens a port to any program: none names node.exe,',
    '# whose path changes with every Node.js update.',
    `# Remove them all with:  Remove-NetFirewallRule -Group ${winQuote(GROUP)}`,
    '# (before running them again: New-NetFirewallRule fails on a rule name that exists).',
    '',
  ];
  for (const r of rules) {
    lines.push(r.comment);
    if (r.id === `${GROUP}-multicast-sessions`) lines.push('# No IGMP rule: the server sends to the session group without joining it, and receivers answer it by unicast.');
    lines.push(powershellLine(r));
  }
  lines.push(
    '',
    '<#',
    'The same rules with netsh, for cmd.exe as an administrator: use these or the ones above, not both.',
    'netsh rules have no group; delete them by name:',
    ...rules.map((r) => `  netsh advfirewall firewall delete rule name=${winQuote(r.displayName)}`),
    '',
    ...rules.map(netshLine),
    '#>',
  );
  return lines;
}

// ---- all flavors -----------------------------------------------------------

/**
 * Lines that open what Fleetboot needs, for the chosen firewall: shell
 * commands (PowerShell for windows) and `#` comments saying what each is for.
 */
export function firewallRules(c: Readonly<FleetbootConfig>, flavor: FirewallFlavor): string[] {
  if (flavor === 'windows') return windowsRules(c);
  const lines: string[] = [];
  for (const p of requiredPorts(c)) {
    lines.push(note(p, 'linux'));
    switch (flavor) {
      case 'nft':
        lines.push(nftInput(p));
        break;
      case 'iptables':
        lines.push(iptablesInput(p));
        break;
      case 'ufw':
        lines.push(ufwInput(p));
        break;
      case 'firewalld':
        lines.push(firewalldInput(p));
        break;
    }
  }
  if (flavor === 'firewalld') lines.push('firewall-cmd --reload');
  return lines;
}

/**
 * The commands alone, for --json: no `#` comment lines, blank lines or
 * PowerShell block comments (`<#` to `#>`: the netsh alternative).
 */
export function commandLines(lines: readonly string[]): string[] {
  const out: string[] = [];
  let inBlock = false;
  for (const l of lines) {
    if (inBlock) {
      if (l.trimEnd().endsWith('#>')) inBlock = false;
      continue;
    }
    if (l.startsWith('<#')) {
      inBlock = !l.trimEnd().endsWith('#>');
      continue;
    }
    if (l === '' || l.startsWith('#')) continue;
    out.push(l);
  }
  return out;
}
