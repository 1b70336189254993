/**
 * Who this Linux machine is (AgentIdentity), read under an injectable root
 * so tests use a fake tree:
 * - MACs: <root>/sys/class/net/<if>/address, every interface but lo and
 *   those with an all-zero or non-Ethernet address. veth, bridges and other
 *   virtual interfaces count: lab tests run agents in network namespaces
 *   where a veth is the only NIC; sameMachine() needs only one in common.
 * - SMBIOS UUID and serial: readSmbiosIdentity() of the imaging agent's
 *   inventory (root only: null for other users).
 * - hostname: <root>/proc/sys/kernel/hostname (os.hostname() on the real root).
 * - os: PRETTY_NAME of <root>/etc/os-release (or usr/lib/os-release).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { readSmbiosIdentity } from '../agent/inventory.js';
import type { AgentIdentity } from '../model/endpoint.js';
import { normaliseMac } from '../model/validate.js';

function readTrim(path: string): string | null {
  try {
    const t = readFileSync(path, 'utf8').trim();
    return t === '' ? null : t;
  } catch {
    return null;
  }
}

export function machineMacs(root = '/'): string[] {
  const sys = join(root, 'sys/class/net');
  let names: string[];
  try {
    names = readdirSync(sys);
  } catch {
    return [];
  }
  const macs = new Set<string>();
  for (const name of names) {
    if (name === 'lo') continue;
    const raw = readTrim(join(sys, name, 'address'));
    const mac = raw === null ? null : normaliseMac(raw);
    if (mac === null || mac === '00:00:00:00:00:00') continue;
    macs.add(mac);
  }
  return [...macs].sort();
}

/** PRETTY_NAME from os-release text. */
export function prettyName(osRelease: string): string | null {
  const m = /^PRETTY_NAME=(.*)$/m.exec(osRelease);
  if (!m?.[1]) return null;
  let v = m[1].trim();
  if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
  v = v.replace(/\\(["'$`\\])/g, '$1').replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 256);
  return v === '' ? null : v;
}

export function linuxIdentity(root: string, agentVersion: string): AgentIdentity {
  const smbios = readSmbiosIdentity(root);
  const host = readTrim(join(root, 'proc/sys/kernel/hostname')) ?? (root === '/' ? osHostname() : null);
  const osRelease = readTrim(join(root, 'etc/os-release')) ?? readTrim(join(root, 'usr/lib/os-release'));
  const clean = (v: string | null, max: number): string | null => (v === null ? null : v.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, max) || null);
  return {
    macs: machineMacs(root),
    smbiosUuid: clean(smbios.smbiosUuid, 64),
    smbiosSerial: clean(smbios.smbiosSerial, 256),
    hostname: clean(host, 253),
    os: osRelease === null ? null : prettyName(osRelease),
    agentVersion,
  };
}
