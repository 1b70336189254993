// For scripts/run-tests.mjs: starts the test run's PostgreSQL
// (src/store/test-postgres.ts), prints its socket directory on one line,
// and stops it when its stdin closes (the test run ended or was killed).
import { startPostgres } from '../src/store/test-postgres.js';

const pg = await startPostgres();
process.stdout.write(`${pg.socketDir}\n`);
process.stdin.resume();
const stop = (): void => {
  void pg.stop().then(() => process.exit(0));
};
process.stdin.once('end', stop);
process.stdin.once('close', stop);
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
