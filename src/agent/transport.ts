/**
 * Where streams go to and come from: the server over HTTP
 * (http-transport.ts) or an image directory on local storage
 * (dir-transport.ts, Clonezilla's "local" mode). Capture and deploy only
 * see this interface.
 */
import type { Readable } from 'node:stream';
import type { CompleteBody, FailBody, HardwareIdentity, ProgressReport, SlotAnswer, StreamReceipt, TaskState } from '../imaging/protocol.js';

export interface Transport {
  /**
   * Store one stream under `file` (p<N>.pcl.zst); resolves with what the
   * other end counted (bytes and sha256 of what it stored). The body cannot
   * be rewound: on a retryable failure this rejects with a TransportError
   * whose `retryable` is true and the caller restarts the stream from its
   * source (capture restarts that partition's partclone).
   */
  putStream(file: string, body: Readable, signal: AbortSignal): Promise<StreamReceipt>;
  /**
   * Read one stored stream from `offset`. The returned stream is continuous:
   * a cut connection is resumed inside (HTTP Range) and the caller never
   * notices, unless the retry window runs out (then it errors).
   */
  getStream(file: string, offset: number, signal: AbortSignal): Promise<Readable>;
  /** Report progress; resolves with the task's state ('cancelled' = stop). */
  progress(report: ProgressReport): Promise<TaskState>;
  /**
   * Say which machine this is, before any transfer. The server compares it
   * with the host's inventory of record and ends the task (CancelledError
   * here) when it is another machine.
   */
  identify(identity: HardwareIdentity): Promise<void>;
  /** Ask for a transfer slot. */
  slot(): Promise<SlotAnswer>;
  complete(body: CompleteBody): Promise<void>;
  fail(body: FailBody): Promise<void>;
}
