/**
 * The firewall rules that let clients reach Fleetboot, for the firewall the
 * administrator runs (`fleetboot firewall --for FLAVOR`). Every rule set is
 * rendered from requiredPorts() (src/config/ports.ts) and nothing else, so
 * no flavor can open a port the others do not.
 */
import type { FleetbootConfig } from './config.js';
import { requiredPorts, type PortUse } from './ports.js';

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
