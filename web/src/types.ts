/**
 * The API's shapes as the console reads them.
 * TODO(openapi merge): replaced by the types inferred from the route schemas (src/http/schemas).
 */
export interface Host {
  mac: string;
  name: string | null;
  entry: string | null;
  ip: string | null;
  status: 'approved' | 'pending';
  createdAt: string;
  updatedAt: string;
}
export interface HostListItem extends Host {
  groups: string[];
}
export interface HostPage {
  hosts: HostListItem[];
  total: number;
  offset: number;
  limit: number | null;
}
export interface Task {
  id: number;
  type: string;
  mac: string;
  hostName?: string | null;
  image?: string | null;
  state: string;
  phase?: string | null;
  bytesDone: number;
  bytesTotal?: number | null;
  rateBps?: number | null;
  etaSeconds?: number | null;
  message?: string | null;
  error?: string | null;
  attempts: number;
  retryOf?: number | null;
  createdAt: string;
  updatedAt: string;
  startedAt?: string | null;
  finishedAt?: string | null;
  jobId?: number | null;
  startAt?: string | null;
  multicastId?: number | null;
  revision?: number | null;
}
export interface HostDetail extends Host {
  groups: string[];
  inventory: Record<string, unknown> | null;
  activeTask: Task | null;
}
export interface BootEvent {
  id: number;
  at: string;
  kind: string;
  mac: string | null;
  ip: string | null;
  summary: string;
  detail: Record<string, unknown>;
}
