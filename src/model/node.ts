/**
 * Another node that serves a booting machine's subnet (issue 15 "nearest
 * node"): what the DHCP answer and the boot scripts point the machine at.
 * Found by src/nodes/directory.ts; used by the pure decisions in src/boot/
 * and src/dhcp/ as part of their context.
 */
export interface ServingNode {
  /** Its node name (logs, `host why`). */
  readonly name: string;
  /** Its address: next-server (siaddr), the TFTP server, the PXE menu's boot server. */
  readonly address: string;
  /** Its HTTP base URL (no trailing slash), checked safe for iPXE scripts: boot.ipxe, HTTP boot URLs. */
  readonly httpBaseUrl: string;
}

/** Finds the node serving a client address synchronously; null: this server serves it. */
export type ServingNodeLookup = (ip: string) => ServingNode | null;
