/** A long-running part of the server (DHCP, TFTP, HTTP...): started and closed in order by the wiring. */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /** Stop accepting work, finish or abort what runs, release sockets. Idempotent. */
  close(): Promise<void>;
}
