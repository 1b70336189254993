/**
 * The console's one way to the API: same-origin fetch with the session
 * cookie, the session's CSRF token on writes, JSON in and out. A 401 ends
 * the session in the page (the login form comes back); every other error
 * is thrown with the server's message, which says what was expected.
 */
import { signal } from '@preact/signals';

export type Role = 'viewer' | 'operator' | 'admin';

export interface Me {
  user: { name: string; role: Role; mustChangePassword: boolean } | null;
  role: Role;
  csrfToken?: string;
}

/** Who is logged in: undefined while asking, null when nobody. */
export const me = signal<Me | null | undefined>(undefined);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
  }
}

const ROLE_RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** Whether the logged-in user's role includes `role` (controls are hidden otherwise; the server enforces it anyway). */
export function can(role: Role): boolean {
  const m = me.value;
  return !!m && ROLE_RANK[m.role] >= ROLE_RANK[role];
}

function errorOf(status: number, body: unknown, retryAfter: string | null): ApiError {
  let code = `HTTP_${status}`;
  let message = `The server answered ${status}`;
  if (typeof body === 'object' && body !== null) {
    if ('error' in body && typeof body.error === 'string') code = body.error;
    if ('message' in body && typeof body.message === 'string') message = body.message;
  }
  const wait = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null;
  return new ApiError(status, code, message, wait);
}

export async function api<T>(method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const csrf = me.value?.csrfToken;
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const res = await fetch(`/api/v1${path}`, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let parsed: unknown = null;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!res.ok) {
    const err = errorOf(res.status, parsed, res.headers.get('retry-after'));
    if (res.status === 401 && !path.startsWith('/auth/login')) me.value = null;
    throw err;
  }
  return parsed as T;
}

/** Query string from the defined, non-empty values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export async function loadMe(): Promise<void> {
  try {
    me.value = await api<Me>('GET', '/auth/me');
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    me.value = null;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
