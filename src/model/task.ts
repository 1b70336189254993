/** Imaging task kinds, states and phases: shared by the store, the imaging service, the HTTP layer and the agent. */
export type TaskType = 'capture' | 'deploy' | 'inventory' | 'register';

/**
 * scheduled: waits for its start time (`--at`); the boot decision ignores it.
 * queued: waiting for the machine to boot (PXE). booting: the boot decision
 * handed it the boot environment. waiting: the agent runs and waits for a
 * transfer slot. running: transferring (or collecting inventory). Then one
 * of done, failed (with a reason), cancelled.
 *
 *   scheduled --start time (scheduler)--> queued --boot decision--> booting --> ...
 */
export type TaskState = 'scheduled' | 'queued' | 'booting' | 'waiting' | 'running' | 'done' | 'failed' | 'cancelled';

/** Not finished: a host has at most one task in these states (a scheduled one counts). */
export const ACTIVE_TASK_STATES: readonly TaskState[] = ['scheduled', 'queued', 'booting', 'waiting', 'running'];

/** The active states the boot decision may act on: all but scheduled (it decides as if there were no task). */
export const BOOTABLE_TASK_STATES = ['queued', 'booting', 'waiting', 'running'] as const satisfies readonly TaskState[];
export type BootableTaskState = (typeof BOOTABLE_TASK_STATES)[number];

export type TaskPhase = 'starting' | 'waiting-slot' | 'partition-table' | 'transfer' | 'verify' | 'inventory' | 'finishing';

export const TASK_PHASES: readonly TaskPhase[] = ['starting', 'waiting-slot', 'partition-table', 'transfer', 'verify', 'inventory', 'finishing'];
