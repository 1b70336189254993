/**
 * Domain errors: conditions callers are expected to catch. Programmer mistakes
 * use the built-in TypeError / RangeError instead.
 */
export type FleetbootErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_INPUT'
  | 'UNAUTHORIZED'
  /** Known, but not allowed to (HTTP 403): a role too low, a failed CSRF check. */
  | 'FORBIDDEN'
  /** Too many attempts (HTTP 429), e.g. failed logins. */
  | 'RATE_LIMITED'
  /** A step that must come first did not (HTTP 428), e.g. the agent's identity before a transfer. */
  | 'PRECONDITION'
  | 'CONFIG'
  | 'IO';

const statusByCode: Record<FleetbootErrorCode, number> = {
  NOT_FOUND: 404,
  CONFLICT: 409,
  INVALID_INPUT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  PRECONDITION: 428,
  CONFIG: 500,
  IO: 500,
};

export class FleetbootError extends Error {
  readonly code: FleetbootErrorCode;
  readonly status: number;
  constructor(code: FleetbootErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FleetbootError';
    this.code = code;
    this.status = statusByCode[code];
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
