/**
 * The database as types (Kysely style). One interface per table; columns the
 * database fills are `Generated<>`; nullable columns are `T | null`.
 *
 * Portability: timestamps are ISO-8601 text written by the application and
 * booleans are avoided, so the same repositories run on PostgreSQL with a
 * PostgreSQL dialect (only the id columns of the first migration would use
 * an identity column there).
 */
import type { Generated } from 'kysely';

export interface BootEntryTable {
  id: Generated<number>;
  /** Unique; ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ */
  name: string;
  /** An http(s) URL, or the name of a file in <dataDir>/entries/<name>/. */
  kernel: string;
  cmdline: string;
  created_at: string;
}

export interface BootEntryInitrdTable {
  entry_id: number;
  /** 0-based order in which iPXE loads the initrds. */
  position: number;
  /** An http(s) URL, or the name of a file in <dataDir>/entries/<name>/. */
  source: string;
}

export interface HostTable {
  id: Generated<number>;
  /** Lower-case colon form: 52:54:00:12:34:56 */
  mac: string;
  name: string | null;
  entry_id: number | null;
  /** Reserved IPv4 address (DHCP server mode), dotted quad; unique when set. */
  ip: string | null;
  created_at: string;
  updated_at: string;
}

export interface DhcpLeaseTable {
  /** Dotted quad; one row per address. */
  ip: string;
  mac: string;
  client_id: string | null;
  state: string;
  /** Milliseconds since the epoch. */
  expires_at: number;
  hostname: string | null;
  updated_at: number;
}

export interface MigrationTable {
  name: string;
  applied_at: string;
}

export interface Database {
  boot_entries: BootEntryTable;
  boot_entry_initrds: BootEntryInitrdTable;
  hosts: HostTable;
  dhcp_leases: DhcpLeaseTable;
  fleetboot_migrations: MigrationTable;
}
