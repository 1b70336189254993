/**
 * Fleetboot's proxyDHCP alone, as the benchmark runs it inside a lab
 * namespace: node --import tsx bench/proxydhcp-server.ts SERVER_IP [LOG_LEVEL]
 * Logs (pino, to stdout, as `fleetboot serve` does) one info line per reply.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/lib/log.js';
import { createProxyDhcpService } from '../src/net/proxy-dhcp.js';

const [serverIp, level = 'info'] = process.argv.slice(2);
if (!serverIp) throw new TypeError('usage: proxydhcp-server.ts SERVER_IP [LOG_LEVEL]');
const config = loadConfig({ overrides: { dhcp: { bindAddress: '0.0.0.0' } }, cwd: mkdtempSync(join(tmpdir(), 'fb-bench-')) });
const logger = createLogger(level === 'silent' || level === 'debug' || level === 'info' || level === 'warn' ? level : 'info');
const svc = createProxyDhcpService({ config, serverIp, httpBaseUrl: `http://${serverIp}:8080`, logger });
await svc.start();
process.stderr.write('ready\n');
const stop = () => void svc.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
