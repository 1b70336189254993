/**
 * The client of bench/cluster-store.ts's hand-out rate: asks each server
 * for the boot decision of each MAC once (GET /boot/decide?mac=..&platform=pcbios,
 * as iPXE does), `--concurrency` requests in flight over keep-alive
 * connections, the MACs dealt round-robin to the servers, and prints one
 * JSON line: tokens handed out, other answers, errors and seconds (first
 * request sent to last answer read).
 *
 *   node --import tsx bench/handout-client.ts --macs FILE --servers http://A:8080[,http://B:8080] [--concurrency 32]
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    macs: { type: 'string' },
    servers: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
  },
});
if (!values.macs || !values.servers) throw new TypeError('usage: handout-client.ts --macs FILE --servers URL[,URL] [--concurrency N]');
const macs = readFileSync(values.macs, 'utf8').split('\n').filter(Boolean);
const servers = values.servers.split(',').map((s) => new URL(s));
const concurrency = Number(values.concurrency);
if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 1024)) throw new RangeError(`--concurrency must be 1-1024: current value is ${values.concurrency}`);

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function get(url: URL, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
  });
}

let next = 0;
let tokens = 0;
let others = 0;
let errors = 0;
const otherSamples: string[] = [];
const errorSamples: string[] = [];

async function worker(): Promise<void> {
  for (let i = next++; i < macs.length; i = next++) {
    const mac = macs[i] as string;
    const server = servers[i % servers.length] as URL;
    try {
      const r = await get(server, `/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios`);
      if (r.status === 200 && /fleetboot\.token=[0-9a-f]+/.test(r.body)) tokens++;
      else {
        others++;
        if (otherSamples.length < 3) otherSamples.push(`${mac} from ${server.host}: HTTP ${r.status} ${r.body.slice(0, 400)}`);
      }
    } catch (err) {
      errors++;
      if (errorSamples.length < 3) errorSamples.push(`${mac} from ${server.host}: ${(err as Error).message}`);
    }
  }
}

const t0 = performance.now();
await Promise.all(Array.from({ length: Math.min(concurrency, macs.length) }, () => worker()));
const seconds = (performance.now() - t0) / 1000;
agent.destroy();
process.stdout.write(`${JSON.stringify({ requests: macs.length, tokens, others, errors, seconds, otherSamples, errorSamples })}\n`);
