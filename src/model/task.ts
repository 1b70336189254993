/** Imaging task kinds, states and phases: shared by the store, the imaging service, the HTTP layer and the agent. */
export type TaskType = 'capture' | 'deploy' | 'inventory' | 'register';

/**
 * queued: waiting for the machine to boot (PXE). booting: the boot decision
 * handed it the boot environment. waiting: the agent runs and waits for a
 * transfer slot. running: transferring (or collecting inventory). Then one
 * of done, failed (with a reason), cancelled.
 */
export type TaskState = 'queued' | 'booting' | 'waiting' | 'running' | 'done' | 'failed' | 'cancelled';

export const ACTIVE_TASK_STATES: readonly TaskState[] = ['queued', 'booting', 'waiting', 'running'];

export type TaskPhase = 'starting' | 'waiting-slot' | 'partition-table' | 'transfer' | 'verify' | 'inventory' | 'finishing';

export const TASK_PHASES: readonly TaskPhase[] = ['starting', 'waiting-slot', 'partition-table', 'transfer', 'verify', 'inventory', 'finishing'];
