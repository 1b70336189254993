/**
 * Who may do what through /api/v1. Three roles, each including the one
 * below it:
 *   viewer    reads everything (no secrets: password hashes and token
 *             secrets are never served);
 *   operator  also runs the fleet: tasks, jobs, hosts, groups, boot
 *             entries, images, approvals, multicast, Wake-on-LAN, schedules;
 *   admin     also manages users and settings, and deletes hosts, entries,
 *             images and groups.
 * Every /api/v1 route declares one of these, or 'public' (the login only):
 * src/http/auth.ts refuses to start an app with a route that declares none.
 */

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What a route declares: the least role that may call it, or 'public' (no credentials at all). */
export type RouteRole = Role | 'public';
export const ROUTE_ROLES: readonly RouteRole[] = ['public', ...ROLES];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function isRouteRole(value: unknown): value is RouteRole {
  return value === 'public' || isRole(value);
}

/** A role read back from the store: a value this version does not know is a corrupt row, not a guess. */
export function roleOf(value: string): Role {
  if (!isRole(value)) throw new RangeError(`Unknown role ${JSON.stringify(value)}: expected ${ROLES.join(', ')}`);
  return value;
}

/** Whether `have` includes `need` (admin > operator > viewer). */
export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** "a viewer", "an operator", "an admin" (for messages). */
export function aRole(role: Role): string {
  return `${role === 'viewer' ? 'a' : 'an'} ${role}`;
}

/** The lower of two roles: what a token may do is its own role capped by its owner's current one. */
export function lowerRole(a: Role, b: Role): Role {
  return roleAtLeast(a, b) ? b : a;
}
