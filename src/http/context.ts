/** What the routes share: built once by buildApp. */
import type { ServingNodeLookup } from '../model/node.js';
import type { FleetbootConfig } from '../config/config.js';
import type { Logger } from '../lib/log.js';
import type { ImagingService } from '../imaging/tasks.js';
import type { BootDecider } from '../imaging/boot-decider.js';
import type { WakeService } from '../wake/service.js';
import type { MulticastService } from '../multicast/service.js';
import type { Store } from '../store/index.js';
import type { NewBootEvent } from '../model/boot-event.js';
import type { AuthService } from '../auth/service.js';
import type { EventBus } from '../events/bus.js';
import type { TlsService } from '../tls/service.js';
import type { VerifyResult } from '../replication/service.js';

/** Ports and addresses actually in use, for /api/v1/status (known only after the services start). */
export interface RuntimeStatus {
  httpPort: number | null;
  /** null while HTTPS does not run. */
  httpsPort: number | null;
  tftpPort: number | null;
  dhcpPort: number | null;
  pxePort: number | null;
  /** When DHCP, TFTP and HTTP boot last answered a client (src/events/activity.ts); absent: never. */
  activity?: { dhcp: string | null; tftp: string | null; http: string | null };
}

export interface AppContext {
  store: Store;
  config: Readonly<FleetbootConfig>;
  serverIp: string;
  log: Logger;
  /** The base URL put into iPXE scripts (no trailing slash). */
  baseUrl(): string;
  runtime(): RuntimeStatus;
  maxUploadBytes: number;
  startedAt: Date;
  /**
   * Called (synchronously) after a host was added, changed or deleted, so
   * the DHCP server can reload the hosts' reservations. Its errors are
   * logged, never returned to the client (the change is already stored).
   */
  hostsChanged(): void;
  /** The imaging task lifecycle (boot decision, agent endpoints, reaper). */
  imaging: ImagingService;
  /** The boot decision with its effects, for iPXE (GET /boot/decide) and GRUB (over TFTP). */
  bootDecider: BootDecider;
  /** Wake-on-LAN; null when this app runs without it (tests that do not need it). */
  wake: WakeService | null;
  /** Multicast sessions; null when this app runs without them (multicast deploys are then refused). */
  multicast: MulticastService | null;
  /**
   * Called after tasks or schedules were created or changed through the
   * API: the scheduler re-arms its timer, the wake service looks at queued
   * tasks. Errors are logged, never returned.
   */
  tasksChanged(): void;
  /** Call after an image's revisions or node assignment changed through the API (replication pulls at once, here and on the other nodes). */
  imagesChanged(): void;
  /** Steps of machines' boots (DHCP, TFTP, HTTP fetches, decisions, tasks) for the timeline; null: not recorded. */
  bootEvents: BootEventSink | null;
  /** Credentials, logins, sessions and API tokens (src/auth/service.ts). */
  auth: AuthService;
  /** Live events (src/events/bus.ts): routes publish host and task changes; GET /api/v1/events streams them. */
  events: EventBus;
  /** The HTTPS certificates (GET /api/v1/tls, renewal); null when HTTPS does not run. */
  tls: Pick<TlsService, 'info' | 'renew'> | null;
  /** The Prometheus exposition text (GET /api/v1/metrics, src/metrics/); null: this app runs without metrics (503). */
  metrics: (() => Promise<string>) | null;
  /** This server's node name (src/nodes/service.ts), or null: it runs without one (tests). */
  nodeName: string | null;
  /**
   * Nearest node (issue 15): the other live node serving a client address's
   * subnet (src/nodes/directory.ts, synchronous), or null: this one. The
   * boot scripts send such a machine on to it (src/http/routes/boot.ts).
   */
  servingNode: ServingNodeLookup;
  /**
   * Re-hash this node's verified copies of an image's revisions now
   * (src/replication/service.ts verifyOnce); null: this app runs without
   * replication (POST /api/v1/images/:name/verify answers 409).
   */
  verifyImage: ((image: string) => Promise<VerifyResult[]>) | null;
}

/** Where the HTTP layer reports boot steps (src/events/boot-recorder.ts). */
export interface BootEventSink {
  record(e: NewBootEvent): void;
}
