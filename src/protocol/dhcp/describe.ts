/**
 * A packet as readable text, one field or option per line: used for the
 * golden files of the captured fixtures and for debugging.
 */
import { cString, hardwareAddress, type DhcpPacket } from './packet.js';
import { decodeSubOptions, messageTypeName, optionName } from './options.js';
import { decodePxeOptions } from './pxe.js';

function printable(d: Buffer): string {
  let s = '';
  for (const c of d) s += c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return `"${s}"`;
}

function hex(d: Buffer): string {
  return d.length ? d.toString('hex').replace(/(..)(?!$)/g, '$1 ') : '(empty)';
}

function ip(d: Buffer, at: number): string {
  return `${d[at]}.${d[at + 1]}.${d[at + 2]}.${d[at + 3]}`;
}

/** Interpret an option's value; falls back to hex. Never throws. */
export function describeOption(code: number, d: Buffer): string {
  try {
    switch (code) {
      case 53:
        return d.length === 1 ? `${d[0]} (${messageTypeName(d[0])})` : hex(d);
      case 1:
      case 3:
      case 6:
      case 28:
      case 50:
      case 54:
        if (d.length % 4 !== 0 || d.length === 0) return hex(d);
        return Array.from({ length: d.length / 4 }, (_, i) => ip(d, i * 4)).join(', ');
      case 51:
      case 58:
      case 59:
        return d.length === 4 ? String(d.readUInt32BE(0)) : hex(d);
      case 57:
        return d.length === 2 ? String(d.readUInt16BE(0)) : hex(d);
      case 55:
        return [...d].join(', ');
      case 12:
      case 15:
      case 56:
      case 60:
      case 66:
      case 67:
        return printable(d);
      case 93:
        return d.length % 2 === 0 && d.length ? Array.from({ length: d.length / 2 }, (_, i) => d.readUInt16BE(i * 2)).join(', ') : hex(d);
      case 94:
        return d.length === 3 ? `type ${d[0]} version ${d[1]}.${d[2]}` : hex(d);
      case 97:
        return d.length === 17 ? `type ${d[0]} guid ${d.subarray(1).toString('hex')}` : hex(d);
      case 77:
        return printable(d);
      case 43: {
        const pxe = decodePxeOptions(d);
        const parts: string[] = [];
        if (pxe.discoveryControl !== undefined) parts.push(`discovery-control=${pxe.discoveryControl}`);
        if (pxe.bootServers) parts.push(`boot-servers=[${pxe.bootServers.map((s) => `${s.type}:${s.addresses.join('/')}`).join(' ')}]`);
        if (pxe.bootMenu) parts.push(`boot-menu=[${pxe.bootMenu.map((m) => `${m.type}:${printable(Buffer.from(m.description, 'latin1'))}`).join(' ')}]`);
        if (pxe.menuPrompt) parts.push(`menu-prompt=${pxe.menuPrompt.timeout}:${printable(Buffer.from(pxe.menuPrompt.prompt, 'latin1'))}`);
        if (pxe.bootItem) parts.push(`boot-item=${pxe.bootItem.type}/layer ${pxe.bootItem.layer}`);
        for (const o of pxe.other) parts.push(`${o.code}=${hex(o.data)}`);
        return `PXE { ${parts.join(', ')} }`;
      }
      case 82:
      case 175:
        return `{ ${decodeSubOptions(code, d).map((s) => `${s.code}=${hex(s.data)}`).join(', ')} }`;
      default:
        return hex(d);
    }
  } catch {
    return hex(d);
  }
}

export function describePacket(p: DhcpPacket): string {
  const lines = [
    `op ${p.op} (${p.op === 1 ? 'BOOTREQUEST' : p.op === 2 ? 'BOOTREPLY' : '?'}) htype ${p.htype} hlen ${p.hlen} hops ${p.hops}`,
    `xid 0x${p.xid.toString(16).padStart(8, '0')} secs ${p.secs} flags 0x${p.flags.toString(16).padStart(4, '0')}`,
    `ciaddr ${p.ciaddr} yiaddr ${p.yiaddr} siaddr ${p.siaddr} giaddr ${p.giaddr}`,
    `chaddr ${hardwareAddress(p)}`,
    `sname ${printable(Buffer.from(cString(p.sname), 'latin1'))}`,
    `file ${printable(Buffer.from(cString(p.file), 'latin1'))}`,
  ];
  for (const o of p.options) {
    if (o.code === 0) {
      lines.push(`  option 0 pad${o.from ? ` [in ${o.from}]` : ''}`);
      continue;
    }
    lines.push(`  option ${o.code} ${optionName(o.code)} (${o.data.length})${o.from ? ` [in ${o.from}]` : ''}: ${describeOption(o.code, o.data)}`);
  }
  lines.push(`end ${p.hasEnd ? 'present' : 'missing'}, ${p.trailer.length} byte(s) after it`);
  return lines.join('\n');
}
