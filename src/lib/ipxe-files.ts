/**
 * The iPXE binaries Fleetboot puts into the TFTP root, and the manifest
 * that records what it put there: <dataDir>/ipxe-manifest.json, written by
 * the server when it copies a binary (src/server.ts populateTftpRoot), read
 * by `fleetboot doctor` to tell a missing, truncated or replaced binary.
 * Pure: parsing and the file's shape.
 */

/** The iPXE binaries copied into the TFTP root when absent there. */
export const IPXE_BINARIES = ['undionly.kpxe', 'snponly.efi', 'ipxe.efi'] as const;

/** In the data directory (private, 0600). */
export const IPXE_MANIFEST = 'ipxe-manifest.json';

export interface IpxeManifestEntry {
  sha256: string;
  bytes: number;
  /** The file it was copied from (/usr/lib/ipxe/...). */
  source: string;
  /** ISO time of the copy. */
  copiedAt: string;
}

/** File name in the TFTP root -> what was copied there. */
export type IpxeManifest = Record<string, IpxeManifestEntry>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The manifest's entries; entries that are not well formed are left out; not JSON or not an object: empty. */
export function parseIpxeManifest(text: string): IpxeManifest {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return {};
  }
  const files = isRecord(j) && isRecord(j.files) ? j.files : {};
  const out: IpxeManifest = {};
  for (const [name, e] of Object.entries(files)) {
    if (!isRecord(e)) continue;
    const { sha256, bytes, source, copiedAt } = e;
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256) || typeof bytes !== 'number' || typeof source !== 'string' || typeof copiedAt !== 'string') continue;
    out[name] = { sha256, bytes, source, copiedAt };
  }
  return out;
}

export function formatIpxeManifest(m: IpxeManifest): string {
  return JSON.stringify({ files: m }, null, 2) + '\n';
}
