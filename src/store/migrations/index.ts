/** Every migration, in order. Names are timestamps: never rename or reorder. */
import type { Kysely } from 'kysely';
import * as m20251123T1200 from './20251123T1200_initial.js';
import * as m20251201T1200 from './20251201T1200_dhcp_leases.js';
import * as m20251210T1200 from './20251210T1200_host_ip.js';
import * as m20261123T1200 from './20261123T1200_imaging.js';
import * as m20261202T1200 from './20261202T1200_revisions.js';
import * as m20261203T1200 from './20261203T1200_groups_jobs_schedules.js';
import * as m20261204T1200 from './20261204T1200_multicast.js';
import * as m20261207T1200 from './20261207T1200_job_hosts.js';
import * as m20261207T1300 from './20261207T1300_boot_events.js';
import * as m20261208T1200 from './20261208T1200_users_sessions_audit.js';
import * as m20261209T1200 from './20261209T1200_inventory_serial.js';
import * as m20261210T1200 from './20261210T1200_image_protected.js';
import * as m20261211T1200 from './20261211T1200_endpoint_agents.js';
import * as m20261212T1200 from './20261212T1200_deploy_enrol.js';
import * as m20261213T1200 from './20261213T1200_lease_claims.js';
import * as m20261213T1300 from './20261213T1300_nodes.js';
import * as m20261213T1400 from './20261213T1400_revision_copies.js';
import * as m20261214T1600 from './20261214T1600_agent_nonces.js';
import * as m20261215T1200 from './20261215T1200_node_tls.js';
import * as m20261215T1300 from './20261215T1300_image_nodes.js';
import * as m20261215T1400 from './20261215T1400_lease_client_index.js';
import * as m20261216T1200 from './20261216T1200_node_groups.js';

export interface Migration {
  readonly name: string;
  up(db: Kysely<unknown>): Promise<void>;
}

export const migrations: readonly Migration[] = [
  { name: '20251123T1200_initial', up: m20251123T1200.up },
  { name: '20251201T1200_dhcp_leases', up: m20251201T1200.up },
  { name: '20251210T1200_host_ip', up: m20251210T1200.up },
  { name: '20261123T1200_imaging', up: m20261123T1200.up },
  { name: '20261202T1200_revisions', up: m20261202T1200.up },
  { name: '20261203T1200_groups_jobs_schedules', up: m20261203T1200.up },
  { name: '20261204T1200_multicast', up: m20261204T1200.up },
  { name: '20261207T1200_job_hosts', up: m20261207T1200.up },
  { name: '20261207T1300_boot_events', up: m20261207T1300.up },
  { name: '20261208T1200_users_sessions_audit', up: m20261208T1200.up },
  { name: '20261209T1200_inventory_serial', up: m20261209T1200.up },
  { name: '20261210T1200_image_protected', up: m20261210T1200.up },
  { name: '20261211T1200_endpoint_agents', up: m20261211T1200.up },
  { name: '20261212T1200_deploy_enrol', up: m20261212T1200.up },
  { name: '20261213T1200_lease_claims', up: m20261213T1200.up },
  { name: '20261213T1300_nodes', up: m20261213T1300.up },
  { name: '20261213T1400_revision_copies', up: m20261213T1400.up },
  { name: '20261214T1600_agent_nonces', up: m20261214T1600.up },
  { name: '20261215T1200_node_tls', up: m20261215T1200.up },
  { name: '20261215T1300_image_nodes', up: m20261215T1300.up },
  { name: '20261215T1400_lease_client_index', up: m20261215T1400.up },
  { name: '20261216T1200_node_groups', up: m20261216T1200.up },
];
