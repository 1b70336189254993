/**
 * Hosts' values that the store, the API's schemas (src/http/schemas/) and
 * the console share. Pure.
 */

/** approved: a host; pending: registered from the boot menu, waiting for an administrator (nothing may be assigned to it). */
export const HOST_STATUSES = ['approved', 'pending'] as const;
export type HostStatus = (typeof HOST_STATUSES)[number];

/** The host list's sort keys (the console's columns). */
export const HOST_SORT_KEYS = ['name', 'mac', 'entry', 'status', 'createdAt', 'updatedAt'] as const;
export type HostSortKey = (typeof HOST_SORT_KEYS)[number];

/** The most hosts one import takes. */
export const IMPORT_MAX = 20_000;
