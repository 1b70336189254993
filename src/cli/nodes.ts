/**
 * `fleetboot node list|show|rm`: the Fleetboot servers sharing the database
 * (src/nodes/service.ts). They speak only the HTTP API.
 */
import type { Command } from 'commander';
import type { DeletedName, Node, NodeList } from '../http/schemas/index.js';
import { isValidName, NAME_RULE } from '../model/validate.js';
import { connect } from './client.js';
import { UsageError, type GlobalOptions } from './globals.js';
import { formatBytes } from './imaging.js';
import { printJson, printLine, printTable } from './output.js';

function nodePath(name: string): string {
  if (!isValidName(name)) throw new UsageError(`A node name is ${NAME_RULE}: current value is ${JSON.stringify(name)}`);
  return `/nodes/${encodeURIComponent(name)}`;
}

/** "3 s ago", "down: 42 s ago", "stopped 2026-...": the heartbeat as people read it. */
export function heartbeatText(n: Pick<Node, 'state' | 'heartbeatAgeSeconds' | 'stoppedAt'>): string {
  if (n.stoppedAt !== null) return `stopped ${n.stoppedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}`;
  return n.heartbeatAgeSeconds < 0 ? 'never' : `${n.heartbeatAgeSeconds} s ago`;
}

function space(n: Pick<Node, 'freeBytes' | 'capacityBytes'>): string | null {
  if (n.freeBytes === null) return null;
  return `${formatBytes(n.freeBytes)} of ${formatBytes(n.capacityBytes) ?? '?'}`;
}

export function nodeRows(nodes: readonly Node[]): Array<Array<string | null>> {
  return nodes.map((n) => [n.self ? `${n.name} *` : n.name, n.state, n.addresses.join(' '), n.subnets.join(' '), n.groups.join(' '), space(n), heartbeatText(n), n.version]);
}

function printNode(n: Node): void {
  const rows: Array<[string, string | null]> = [
    ['name', n.self ? `${n.name} (this server)` : n.name],
    ['state', n.state],
    ['addresses', n.addresses.join(' ')],
    ['subnets', n.subnets.join(' ') || null],
    ['groups', n.groups.join(' ') || null],
    ['http', n.httpUrl],
    ['https', n.httpsUrl],
    ['free', space(n)],
    ['heartbeat', `${heartbeatText(n)} (every ${n.heartbeatSeconds} s; down after 3 missed)`],
    ['started', n.startedAt],
    ['version', n.version],
    ['registered', n.createdAt],
  ];
  for (const [k, v] of rows) printLine(`${k.padEnd(11)}${v ?? '-'}`);
}

export function registerNodeCommands(program: Command, globals: GlobalOptions): void {
  const api = () => connect(globals);
  const node = program.command('node').description('nodes: the Fleetboot servers sharing the database, their heartbeat and what they serve');
  node
    .command('list')
    .alias('ls')
    .description('every node, up or down (* marks the server answering)')
    .action(async () => {
      const r = await (await api()).request<NodeList>('GET', '/nodes');
      if (globals.json) printJson(r);
      else printTable(['NAME', 'STATE', 'ADDRESSES', 'SUBNETS', 'GROUPS', 'FREE', 'HEARTBEAT', 'VERSION'], nodeRows(r.nodes), 'No nodes.');
    });
  node
    .command('show')
    .description('one node: addresses, subnets, groups, URLs, free space, heartbeat')
    .argument('<name>')
    .action(async (name: string) => {
      const n = await (await api()).request<Node>('GET', nodePath(name));
      if (globals.json) printJson(n);
      else printNode(n);
    });
  node
    .command('rm')
    .alias('remove')
    .description('remove a node that is gone for good (refused while it is up, unless --force; never the server answering)')
    .argument('<name>')
    .option('--force', 'remove it even though it is up (a running node registers again at its next heartbeat)')
    .action(async (name: string, opts: { force?: boolean }) => {
      const r = await (await api()).request<DeletedName>('DELETE', `${nodePath(name)}${opts.force ? '?force=true' : ''}`);
      if (globals.json) printJson(r);
      else printLine(`Removed node ${r.deleted}`);
    });
}
