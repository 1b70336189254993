/**
 * The error of a listening socket that could not be bound, for people:
 * the service, the address and port, the system's reason, and what to do
 * for the two usual causes (a port below 1024 without the privilege,
 * a port another program holds).
 */
import { FleetbootError, errorMessage } from '../lib/errors.js';

export function bindError(what: string, address: string, port: number, err: unknown): FleetbootError {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  const hint =
    (code === 'EACCES' || code === 'EPERM') && port > 0 && port < 1024
      ? `: ports below 1024 need root or the capability CAP_NET_BIND_SERVICE (the systemd unit grants it to the fleetboot user: README "Run as a service"), or configure a port of 1024 or more`
      : code === 'EADDRINUSE'
        ? ': another program holds this port (see `ss -lunp`)'
        : '';
  return new FleetbootError('IO', `Cannot bind ${what} ${address}:${port}: ${errorMessage(err)}${hint}`, { cause: err });
}
