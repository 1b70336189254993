/**
 * The endpoint agent's domain errors: conditions the CLI turns into one line
 * on stderr and an exit code. Programmer mistakes stay TypeError/RangeError.
 */

/** Exit codes of `fleetboot-agent` (documented in main.ts's usage). */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  notEnrolled: 3,
  caMismatch: 4,
  revoked: 5,
} as const;

export type AgentErrorCode = 'USAGE' | 'STATE' | 'NOT_ENROLLED' | 'CA_MISMATCH' | 'REVOKED' | 'SERVER' | 'NETWORK';

const exitByCode: Record<AgentErrorCode, number> = {
  USAGE: EXIT.usage,
  STATE: EXIT.failed,
  NOT_ENROLLED: EXIT.notEnrolled,
  CA_MISMATCH: EXIT.caMismatch,
  REVOKED: EXIT.revoked,
  SERVER: EXIT.failed,
  NETWORK: EXIT.failed,
};

export class AgentError extends Error {
  override name = 'AgentError';
  readonly code: AgentErrorCode;
  readonly exitCode: number;
  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.exitCode = exitByCode[code];
  }
}
