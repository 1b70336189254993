/**
 * The shape of Fleetboot's configuration. What each key means, its default
 * and what it accepts are in the schema (schema.ts), one entry per key; the
 * compiler holds the two together (`SchemaOf<FleetbootConfig>`).
 */
import type { OptionSetting, PoolSettings } from '../dhcp/subnets.js';

export type DhcpMode = 'proxy' | 'server' | 'off';

/** A `dhcp.pools` entry: one dynamic range (server mode). In a config file only start and end are required. */
export type DhcpPoolConfig = PoolSettings;
/** A `dhcp.options` entry: `{ "code": 3, "value": "10.0.0.1" }` (types: src/dhcp/option-values.ts). */
export type DhcpOptionConfig = OptionSetting;
export interface DhcpReservationConfig {
  mac: string;
  ip: string;
  hostname: string | null;
}

export interface PortRange {
  from: number;
  to: number;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
/** auto: human-readable lines on a terminal, JSON otherwise. */
export type LogFormat = 'auto' | 'pretty' | 'json';
export type UnknownPolicy = 'menu' | 'register';
export type SecureBootMode = 'auto' | 'on' | 'off';

export interface FleetbootConfig {
  dataDir: string;
  /** Where the shared state lives: null = SQLite in dataDir (the default); a PostgreSQL URL = that database, which several servers may share. */
  store: {
    url: string | null;
  };
  interface: string | null;
  serverIp: string | null;
  http: {
    host: string;
    port: number;
    publicUrl: string | null;
  };
  /** The API, the console and the endpoint agents over TLS; the boot endpoints stay on plain HTTP (firmware has no HTTPS). */
  https: {
    enabled: boolean;
    host: string;
    port: number;
    /** The admin's certificate and key, instead of one from Fleetboot's own CA (both or neither). */
    certFile: string | null;
    keyFile: string | null;
    /** The CA that issued certFile, for endpoint agents to pin. */
    caFile: string | null;
    /** Extra DNS names and IPv4 addresses for the server certificate of Fleetboot's own CA. */
    names: string[];
  };
  dhcp: {
    mode: DhcpMode;
    bindAddress: string;
    port: number;
    pxePort: number;
    biosMenu: {
      enabled: boolean;
      prompt: string;
      timeoutSeconds: number;
    };
    pools: DhcpPoolConfig[];
    options: DhcpOptionConfig[];
    reservations: DhcpReservationConfig[];
    probeAtStart: boolean | null;
    probeTimeoutMs: number;
  };
  tftp: {
    enabled: boolean;
    root: string;
    bindAddress: string;
    port: number;
    dataPorts: PortRange | null;
    timeoutMs: number;
    maxRetries: number;
    maxBlksize: number;
    maxWindowsize: number;
    busyPollMicros: number;
  };
  boot: {
    menuTimeoutSeconds: number;
    files: {
      bios: string;
      efiX64: string;
      efiIa32: string;
      efiArm64: string;
    };
  };
  /** x64 UEFI machines under Secure Boot: Debian's signed shim and GRUB instead of iPXE (src/boot/grub.ts). */
  uefi: {
    /** off: iPXE; on: shim and GRUB (the start fails without them); auto: shim and GRUB when installed, else iPXE. */
    secureBoot: SecureBootMode;
    /** Where scripts/install-deps.sh put Debian's signed shimx64.efi and grubnetx64.efi. */
    signedDir: string;
  };
  imaging: {
    bootEnvDir: string;
    maxTransfers: number;
    agentTimeoutSeconds: number;
    progressIntervalSeconds: number;
    unknownPolicy: UnknownPolicy;
    kernelArgs: string;
    maxImageBytes: number;
    maxAttempts: number;
    keepRevisions: number;
    captureApproval: boolean;
    createRateLimit: {
      burst: number;
      perMinute: number;
    };
  };
  wake: {
    port: number;
    repeats: number;
    spacingSeconds: number;
    contactTimeoutSeconds: number;
    subnets: string[];
    relayPrefixLength: number;
  };
  multicast: {
    /** Group addresses sessions take, as a subnet ("239.255.42.0/24"). */
    addresses: string;
    /** UDP ports sessions take (data to the group and answers to the server): "FROM-TO" or one port. */
    ports: string;
    ttl: number;
    /** Interface (its IPv4 address or name) sessions leave by; null = the server address. */
    interface: string | null;
    maxRateMbps: number;
    slowReceiverSeconds: number;
    receiverTimeoutSeconds: number;
    /** Default wait for receivers before starting without all of them (null: wait for every member). */
    maxWaitSeconds: number | null;
  };
  agents: {
    /** Seconds between an endpoint agent's polls (each ±20 %, the agent's jitter). */
    pollSeconds: number;
    /** Longest wait of a long poll (GET /endpoint/v1/work?wait=S). */
    longPollSeconds: number;
    /** An agent's session lasts this long; it then signs a new nonce. */
    sessionMinutes: number;
  };
  auth: {
    /** A login session unused this long ends. */
    sessionIdleMinutes: number;
    /** A login session ends this long after the login, used or not. */
    sessionMaxHours: number;
  };
  /** This server as a node among the servers sharing the database (src/nodes/service.ts). */
  node: {
    /** Unique among the nodes; null = the host name. */
    name: string | null;
    /** Relayed subnets it serves besides its pools' and its own segment. */
    subnets: string[];
    /** The groups it is in: images assigned to `group:NAME` are pulled by every node in the group. */
    groups: string[];
    heartbeatSeconds: number;
  };
  /** Verified image replication between nodes (src/replication/service.ts). */
  replication: {
    enabled: boolean;
    pullIntervalSeconds: number;
    /** 0 = never. */
    verifyIntervalHours: number;
    /** Pull from a node with HTTPS off over plain HTTP (default false). */
    allowPlainHttp: boolean;
    /** doctor: a node lacking an assigned revision longer than this is a warning. */
    lagWarnMinutes: number;
  };
  log: {
    level: LogLevel;
    format: LogFormat;
  };
}

/**
 * Whether a config value is a group of keys (a nested section) rather than
 * one value: plain objects are groups; lists, nullable values and scalars
 * are values.
 */
export type IsGroup<V> = [V] extends [readonly unknown[]] ? false : null extends V ? false : [V] extends [object] ? true : false;

/** A deep-partial view of the config, as written in a config file or built from flags. */
export type OverridesOf<T> = {
  [K in keyof T]?: IsGroup<T[K]> extends true ? OverridesOf<T[K]> : T[K];
};
export type ConfigOverrides = OverridesOf<FleetbootConfig>;

