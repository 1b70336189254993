/**
 * The state one lab e2e file shares between its before() hook, its tests and
 * its after() hook: the environment the hook built, and whether anything
 * failed (then the logs are kept).
 *
 *   const suite = new LabSuite<Env>();
 *   const { guarded, need } = suite;
 *   before(() => guarded(async () => { suite.env = await build(); }));
 *   test('...', () => guarded(async () => { const e = need(); ... }));
 *   after(async () => { if (suite.failed) keepLogs(suite.env); ... });
 */
export class LabSuite<E> {
  env: E | null = null;
  failed = false;

  /** Run a hook or test body; a throw marks the suite failed (logs are kept). */
  readonly guarded = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      this.failed = true;
      throw err;
    }
  };

  /** The environment, or the reason there is none. */
  readonly need = (): E => {
    if (!this.env) throw new Error('the lab was not set up (see the error of the before() hook above)');
    return this.env;
  };
}
