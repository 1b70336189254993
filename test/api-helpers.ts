/** For the REST API tests: a JSON request through app.inject with the API token. */
import type { FastifyInstance } from 'fastify';

export type Json = Record<string, unknown>;

/** `call(method, url, payload?)` -> status and parsed JSON body; `app` and `token` are read at each call (set in before()). */
export function apiCaller(app: () => FastifyInstance, token: () => string) {
  return async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object): Promise<{ status: number; body: Json }> => {
    const r = await app().inject({ method, url, headers: { authorization: `Bearer ${token()}` }, ...(payload ? { payload } : {}) });
    return { status: r.statusCode, body: r.json<Json>() };
  };
}
