/**
 * Where an image's revisions are replicated (issue 15, FOG's storage
 * groups): every node ('all'), or a list of entries, each a node name or
 * `group:NAME`. A node is assigned the image when its name is listed or one
 * of its groups is (a node's groups are its config's node.groups, published
 * in its row of the nodes table). Pure: the store validates entries against
 * the registered nodes (src/store/images.ts setImageNodes), the replication
 * service and the doctor's lag decide with `isAssigned`.
 */
import { NAME_PATTERN, NAME_RULE, isValidName } from './validate.js';

/** An image's setting: every node, or these entries (node names and `group:NAME`). */
export type ImageNodes = 'all' | string[];

/** What marks an entry as a group's name rather than a node's. */
export const GROUP_PREFIX = 'group:';

/** One entry of a list: a node name, or `group:` and a group name (group names follow node names' syntax). */
export const IMAGE_NODE_ENTRY_PATTERN = `^(${GROUP_PREFIX})?${NAME_PATTERN.slice(1)}`;

/** What an entry must be, as messages say it. */
export const IMAGE_NODE_ENTRY_RULE = `a node name or group:NAME (each name ${NAME_RULE})`;

export type ImageNodeEntry = { kind: 'node'; name: string } | { kind: 'group'; name: string };

/** 'pxe-a' -> a node, 'group:building-a' -> a group; null when it is neither. */
export function parseImageNodeEntry(entry: string): ImageNodeEntry | null {
  const group = entry.startsWith(GROUP_PREFIX);
  const name = group ? entry.slice(GROUP_PREFIX.length) : entry;
  if (!isValidName(name)) return null;
  return { kind: group ? 'group' : 'node', name };
}

/** What assignment needs to know of a node (a NodeRecord has it). */
export interface AssignableNode {
  readonly name: string;
  readonly groups: readonly string[];
}

/** Is `node` assigned the revisions of an image whose setting is `nodes`: listed by name, or one of its groups is? */
export function isAssigned(nodes: ImageNodes, node: AssignableNode): boolean {
  if (nodes === 'all') return true;
  return nodes.some((entry) => {
    const e = parseImageNodeEntry(entry);
    return e !== null && (e.kind === 'node' ? e.name === node.name : node.groups.includes(e.name));
  });
}
