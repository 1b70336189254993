/**
 * A tiny runner that starts only the TFTP service, for benchmarks and manual tries:
 *   node --import tsx bench/tftp-server.ts --root DIR [--address 127.0.0.1] [--port 69]
 *        [--data-ports 64001-65000] [--max-blksize 65464] [--max-windowsize 64]
 *        [--timeout-ms 1000] [--max-retries 5] [--log info] [--busy-poll-us 0]
 * Prints "listening PORT" on stdout once bound; SIGTERM/SIGINT close it.
 */
import { parseArgs } from 'node:util';
import { createTftpService } from '../src/net/tftp-server.js';
import { createLogger } from '../src/lib/log.js';
import type { PortRange } from '../src/config/config.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    address: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '69' },
    'data-ports': { type: 'string' },
    'max-blksize': { type: 'string', default: '65464' },
    'max-windowsize': { type: 'string', default: '64' },
    'timeout-ms': { type: 'string', default: '1000' },
    'max-retries': { type: 'string', default: '5' },
    log: { type: 'string', default: 'info' },
    'busy-poll-us': { type: 'string', default: '0' },
  },
});
if (!values.root) throw new TypeError('--root DIR is required');
let dataPorts: PortRange | null = null;
if (values['data-ports']) {
  const [from, to] = values['data-ports'].split('-').map(Number);
  dataPorts = { from: from ?? 0, to: to ?? from ?? 0 };
}
const level = values.log as 'info' | 'warn' | 'silent' | 'debug';
const svc = createTftpService({
  root: values.root,
  bindAddress: values.address,
  port: Number(values.port),
  dataPorts,
  timeoutMs: Number(values['timeout-ms']),
  maxRetries: Number(values['max-retries']),
  maxBlksize: Number(values['max-blksize']),
  maxWindowsize: Number(values['max-windowsize']),
  busyPollMicros: Number(values['busy-poll-us']),
  logger: createLogger(level, process.stderr),
});
await svc.start();
process.stdout.write(`listening ${svc.port}\n`);
const stop = (): void => {
  void svc.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
