/**
 * The names Fleetboot's server certificate is issued for: the server
 * address first (what agents and the console are given), every IPv4
 * address of the machine's interfaces (the console may be opened on any of
 * them), loopback and `localhost` (the CLI and tests on the machine), the
 * host name, and the extra names of `https.names`. A server certificate
 * that lacks one of them is issued again at start (src/tls/ca.ts); one
 * that names more (an address since gone) is kept.
 */
import { hostname as osHostname, networkInterfaces } from 'node:os';
import { isDnsName } from '../model/dns-name.js';

export interface NameSources {
  serverIp: string;
  /** IPv4 addresses of the machine's interfaces (default: read from the system). */
  addresses?: readonly string[];
  /** The machine's host name (default: os.hostname()); left out when it is no DNS name. */
  hostname?: string;
  /** `https.names`: DNS names and IPv4 addresses, already checked by the config. */
  extra: readonly string[];
}

/** Every IPv4 address of the machine's interfaces, loopback included. */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a?.family === 'IPv4')
    .map((a) => a?.address as string);
}

/** The names, in that order, each once (DNS names lower-cased). */
export function wantedNames(s: NameSources): string[] {
  const host = (s.hostname ?? osHostname()).toLowerCase();
  const all = [s.serverIp, ...(s.addresses ?? interfaceAddresses()), '127.0.0.1', 'localhost', ...(isDnsName(host) ? [host] : []), ...s.extra.map((n) => n.toLowerCase())];
  return [...new Set(all)];
}
