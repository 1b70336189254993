/**
 * The firewall rules that let clients reach Fleetboot, for the firewall the
 * administrator runs (`fleetboot firewall --for FLAVOR`). Every rule set is
 * rendered from requiredPorts() and outboundPorts() (src/config/ports.ts)
 * and nothing else, so no flavor opens a port the others do not; the one
 * difference between systems is where "ephemeral" is (concretePort()).
 *
 * Input rules are the default, and all a server whose output is not
 * filtered needs: what clients send comes to a port these rules open or
 * answers what the server sent (established), so no conntrack helper is
 * involved (NOTES.md, Firewalls). `outputFiltering` adds
 * what a machine that also drops outgoing traffic by default must let out
 * (outboundPorts()), and there the TFTP data is the one case for a helper:
 * it leaves from a port conntrack has not seen. When tftp.dataPorts pins the
 * data ports a rule by source port lets it out, which needs no helper and no
 * kernel module; when they are ephemeral such a rule would let out every
 * program's UDP from the whole ephemeral range, so the Linux flavors assign
 * the TFTP helper instead, and say so. Windows Firewall has no TFTP helper:
 * its outbound rules go by local port in both cases.
 *
 * The output filtering part is behind a flag rather than always printed:
 * most servers filter only what comes in, their rules stay short, and a
 * machine that filters its output gets rules written for that, with the
 * helper where it is needed. Without the flag the last comment says when to
 * use it.
 */
import type { FleetbootConfig } from './config.js';
import { concretePort, EPHEMERAL_PORTS, outboundPorts, requiredPorts, type OutboundUse, type PortPlatform, type PortSpec, type PortUse } from './ports.js';

export const FIREWALL_FLAVORS = ['nft', 'iptables', 'ufw', 'firewalld', 'windows'] as const;
export type FirewallFlavor = (typeof FIREWALL_FLAVORS)[number];

export interface FirewallOptions {
  /**
   * Also the rules for a machine whose output policy drops (nft/iptables
   * output chain, `ufw default deny outgoing`, a firewalld policy from the
   * HOST zone, Windows DefaultOutboundAction Block). Default false.
   */
  outputFiltering?: boolean;
}

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

/** The comment above an output rule (its `why` says where the ports are). */
function outNote(o: OutboundUse): string {
  return `# ${o.service}: ${o.why}`;
}

/**
 * Whether the TFTP data needs the conntrack helper on Linux: it does when its
 * ports are ephemeral (see the header).
 */
function usesTftpHelper(o: OutboundUse): o is OutboundUse & { helper: NonNullable<OutboundUse['helper']> } {
  return o.helper !== null && o.port === null;
}

/** What a pinned data-port range is let out by instead of the helper. */
function pinnedNote(o: OutboundUse): string[] {
  return [outNote(o), '# tftp.dataPorts pins these ports, so a rule by source port lets them out: the TFTP conntrack helper is not needed.'];
}

/** The comments above an output rule: the helper-free case of TFTP data says so. */
function outNotes(o: OutboundUse): string[] {
  return o.helper !== null ? pinnedNote(o) : [outNote(o)];
}

function helperNote(o: OutboundUse & { helper: NonNullable<OutboundUse['helper']> }): string[] {
  return [
    outNote(o),
    `# A rule by source port would let out every program's UDP from that whole range, so the TFTP conntrack helper is needed, and included:`,
    `# it reads each request to port ${o.helper.requestPort} and marks its transfer related, which the established,related rule lets out.`,
    '# Since Linux 4.7 a helper works only where a rule assigns it; the kernel loads its module, nf_conntrack_tftp, when a rule first names it.',
    '# (Or set tftp.dataPorts: a source-port rule then replaces the helper.)',
  ];
}

// ---- nft -------------------------------------------------------------------

function nftInput(p: PortUse): string {
  return `nft add rule inet filter input ${p.proto} dport ${portText(concretePort(p.port, 'linux'), '-')} accept`;
}

function nftOutput(outbound: readonly OutboundUse[]): string[] {
  const lines = ['nft add rule inet filter output ct state established,related accept'];
  for (const o of outbound) {
    if (usesTftpHelper(o)) {
      const name = `tftp-${o.helper.requestPort}`;
      lines.push(
        ...helperNote(o),
        `# It is assigned in a table of its own (prerouting, after conntrack); \`nft delete table inet fleetboot\` removes it.`,
        'nft add table inet fleetboot',
        `nft add ct helper inet fleetboot ${name} '{ type "${o.helper.name}" protocol udp; }'`,
        `nft add chain inet fleetboot prerouting '{ type filter hook prerouting priority 0; policy accept; }'`,
        `nft add rule inet fleetboot prerouting udp dport ${o.helper.requestPort} ct helper set '"${name}"'`,
      );
      continue;
    }
    lines.push(...outNotes(o), `nft add rule inet filter output ${o.proto} ${o.match} ${portText(concretePort(o.port, 'linux'), '-')} accept`);
  }
  return lines;
}

// ---- iptables --------------------------------------------------------------

function iptablesInput(p: PortUse): string {
  return `iptables -A INPUT -p ${p.proto} --dport ${portText(concretePort(p.port, 'linux'), ':')} -j ACCEPT`;
}

function iptablesOutput(outbound: readonly OutboundUse[]): string[] {
  const lines = ['iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'];
  for (const o of outbound) {
    if (usesTftpHelper(o)) {
      lines.push(...helperNote(o), `iptables -t raw -A PREROUTING -p udp --dport ${o.helper.requestPort} -j CT --helper ${o.helper.name}`);
      continue;
    }
    lines.push(...outNotes(o), `iptables -A OUTPUT -p ${o.proto} --${o.match} ${portText(concretePort(o.port, 'linux'), ':')} -j ACCEPT`);
  }
  return lines;
}

// ---- ufw -------------------------------------------------------------------

function ufwInput(p: PortUse): string {
  return `ufw allow ${portText(concretePort(p.port, 'linux'), ':')}/${p.proto}`;
}

function ufwOutput(outbound: readonly OutboundUse[]): string[] {
  const lines = ["# ufw's before.rules already lets out RELATED,ESTABLISHED traffic."];
  for (const o of outbound) {
    if (usesTftpHelper(o)) {
      lines.push(
        ...helperNote(o),
        '# ufw has no command for helpers (ufw-framework(8), CONNECTION HELPERS): add these lines to /etc/ufw/before.rules,',
        "# after the *filter section's COMMIT, then run `ufw reload` (if the module does not load, add nf_conntrack_tftp to IPT_MODULES in /etc/default/ufw):",
        '#   *raw',
        '#   :PREROUTING ACCEPT [0:0]',
        `#   -A PREROUTING -p udp --dport ${o.helper.requestPort} -j CT --helper ${o.helper.name}`,
        '#   COMMIT',
      );
      continue;
    }
    const port = portText(concretePort(o.port, 'linux'), ':');
    lines.push(...outNotes(o), o.match === 'sport' ? `ufw allow out proto ${o.proto} from any port ${port} to any` : `ufw allow out ${port}/${o.proto}`);
  }
  return lines;
}

// ---- firewalld -------------------------------------------------------------

function firewalldInput(p: PortUse): string {
  return `firewall-cmd --permanent --add-port=${portText(concretePort(p.port, 'linux'), '-')}/${p.proto}`;
}

/** firewalld's tftp service assigns its helper on this port only (config/helpers/tftp.xml in firewalld). */
const FIREWALLD_TFTP_HELPER_PORT = 69;

function firewalldOutput(outbound: readonly OutboundUse[]): string[] {
  const lines = [
    '# firewalld zones filter only incoming traffic; outgoing traffic is filtered only by a policy whose ingress zone is HOST',
    '# (firewalld 0.9 and later), which lets out established and related traffic. If you have one (POLICY below), let out in it:',
  ];
  const helperLines: string[] = [];
  for (const o of outbound) {
    if (usesTftpHelper(o)) {
      if (o.helper.requestPort === FIREWALLD_TFTP_HELPER_PORT) {
        helperLines.push(
          ...helperNote(o),
          "# firewalld's tftp service carries it, in the default zone (--zone=ZONE for another); it also opens 69/udp, open already:",
          'firewall-cmd --permanent --add-service=tftp',
        );
      } else {
        helperLines.push(
          outNote(o),
          `# firewalld's tftp service assigns the TFTP conntrack helper on port ${FIREWALLD_TFTP_HELPER_PORT} only, and tftp.port is ${o.helper.requestPort}:`,
          '# set tftp.dataPorts and let them out by source port in the policy instead.',
        );
      }
      continue;
    }
    const port = portText(concretePort(o.port, 'linux'), '-');
    const what = o.helper !== null ? `${o.service}: tftp.dataPorts pins them, so no conntrack helper is needed` : o.service;
    lines.push(`#   firewall-cmd --permanent --policy=POLICY --add-${o.match === 'sport' ? 'source-port' : 'port'}=${port}/${o.proto}   (${what})`);
  }
  return [...lines, ...helperLines];
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

function windowsRules(c: Readonly<FleetbootConfig>, outputFiltering: boolean): string[] {
  const inbound = requiredPorts(c).map((p) => winRule(p, 'in', 'local', note(p, 'windows')));
  const outbound = outputFiltering ? outboundPorts(c).map((o) => winRule(o, 'out', o.match === 'sport' ? 'local' : 'remote', `${outNote(o)}${o.port === null ? EPHEMERAL_NOTE.windows : ''}`)) : [];
  const rules = [...inbound, ...outbound];
  const lines = [
    '# Fleetboot: Windows Firewall rules for the ports this configuration uses.',
    '# Run them in PowerShell as an administrator (elevated). Each rule opens a port to any program: none names node.exe,',
    '# whose path changes with every Node.js update.',
    `# Remove them all with:  Remove-NetFirewallRule -Group ${winQuote(GROUP)}`,
    '# (before running them again: New-NetFirewallRule fails on a rule name that exists).',
    '',
  ];
  for (const r of inbound) {
    lines.push(r.comment);
    if (r.id === `${GROUP}-multicast-sessions`) lines.push('# No IGMP rule: the server sends to the session group without joining it, and receivers answer it by unicast.');
    lines.push(powershellLine(r));
  }
  if (outputFiltering) {
    lines.push(
      '',
      '# Output filtering (--output-filtering), for a profile whose outbound default is Block: what the server sends that is not',
      '# a reply to what the rules above let in (Windows Firewall lets those replies out). It has no TFTP helper: all go by port.',
    );
    if (c.tftp.enabled && c.tftp.dataPorts === null) {
      lines.push('# With tftp.dataPorts unset the TFTP data rule lets any program send UDP from the dynamic range: pin tftp.dataPorts to narrow it.');
    }
    for (const r of outbound) lines.push(r.comment, powershellLine(r));
  } else {
    lines.push('# Inbound rules only: Windows lets programs send by default. If outbound is blocked (DefaultOutboundAction Block), add --output-filtering.');
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

const OUTPUT_HINT: Record<Exclude<FirewallFlavor, 'windows'>, string> = {
  nft: '# Input rules only. If the output chain drops by default too, add --output-filtering (with the TFTP conntrack helper where needed).',
  iptables: '# Input rules only. If the OUTPUT chain drops by default too, add --output-filtering (with the TFTP conntrack helper where needed).',
  ufw: '# Input rules only (ufw allows outgoing traffic by default). After `ufw default deny outgoing`, add --output-filtering.',
  firewalld: '# Input rules only (firewalld zones do not filter outgoing traffic). With a policy from the HOST zone, add --output-filtering.',
};

/**
 * Lines that open what Fleetboot needs, for the chosen firewall: shell
 * commands (PowerShell for windows) and `#` comments saying what each is for.
 */
export function firewallRules(c: Readonly<FleetbootConfig>, flavor: FirewallFlavor, opts: FirewallOptions = {}): string[] {
  const outputFiltering = opts.outputFiltering ?? false;
  if (flavor === 'windows') return windowsRules(c, outputFiltering);
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
  if (outputFiltering) {
    const outbound = outboundPorts(c);
    lines.push(
      '',
      '# Output filtering (--output-filtering), for a machine that also drops outgoing traffic by default: what the server sends',
      '# that is not a reply to what the rules above let in (those replies leave as established).',
    );
    switch (flavor) {
      case 'nft':
        lines.push(...nftOutput(outbound));
        break;
      case 'iptables':
        lines.push(...iptablesOutput(outbound));
        break;
      case 'ufw':
        lines.push(...ufwOutput(outbound));
        break;
      case 'firewalld':
        lines.push(...firewalldOutput(outbound));
        break;
    }
  } else {
    lines.push(OUTPUT_HINT[flavor]);
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
