/**
 * One error handler for the whole app: FleetbootError codes map to their
 * status, schema-validation errors are 400 with Ajv's message, client errors
 * raised by Fastify itself keep their status, and anything else is a 500
 * whose details go to the log only.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FleetbootError } from '../lib/errors.js';

export interface ErrorBody {
  error: string;
  message: string;
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler(async (err: FastifyError | FleetbootError | Error, req: FastifyRequest, reply: FastifyReply) => {
    let status = 500;
    let body: ErrorBody = { error: 'INTERNAL', message: 'Internal server error' };
    if (err instanceof FleetbootError) {
      status = err.status;
      body = status >= 500 ? body : { error: err.code, message: err.message };
    } else if ('validation' in err && err.validation) {
      status = 400;
      body = { error: 'INVALID_INPUT', message: err.message };
    } else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      body = { error: status === 404 ? 'NOT_FOUND' : 'INVALID_INPUT', message: err.message };
    }
    if (status >= 500) req.log.error({ err, url: req.url, method: req.method }, 'request failed');
    else req.log.debug({ url: req.url, method: req.method, status, message: body.message }, 'request refused');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler(async (req, reply) => {
    return reply.code(404).send({ error: 'NOT_FOUND', message: `No route for ${req.method} ${req.url.split('?')[0]}` });
  });
}
