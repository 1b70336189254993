/**
 * `fleetboot ca show` and `fleetboot ca renew`: the HTTPS certificates, over
 * the API (GET /api/v1/tls, POST /api/v1/tls/renew).
 *
 * `show` prints the CA that browsers import and endpoint agents pin (its
 * SHA-256 in both forms: plain hex, what `fleetboot-agent enroll
 * --ca-sha256` takes, and the colon form browsers and openssl show), the
 * server certificate's names and expiry, then the CA's PEM; `--pem` prints
 * the PEM alone (`fleetboot ca show --pem > fleetboot-ca.crt`).
 */
import type { Command } from 'commander';
import type { TlsInfo } from '../http/schemas/index.js';
import { colonHex } from '../tls/x509.js';
import { CliError, connect } from './client.js';
import type { GlobalOptions } from './globals.js';
import { printJson, printLine } from './output.js';

/** The human form of GET /api/v1/tls (without the PEM). */
export function formatTlsInfo(t: TlsInfo): string {
  const lines: string[] = [];
  if (t.ca === null) {
    lines.push('CA           none: the configured certificate (https.certFile) came without https.caFile; clients trust it through their own stores');
  } else {
    lines.push(`CA           ${t.ca.subject}`, `  expires    ${t.ca.notAfter}`, `  SHA-256    ${t.ca.sha256}`, `             ${colonHex(t.ca.sha256)}`);
  }
  const s = t.server;
  lines.push(
    `Server       ${s.configured ? 'the configured certificate (https.certFile)' : "issued by Fleetboot's CA"}`,
    `  names      ${s.names.join(', ')}`,
    `  expires    ${s.notAfter}`,
    `  SHA-256    ${s.sha256}`,
    `  issued by  ${s.issuedBy}`,
  );
  return lines.join('\n') + '\n';
}

export function registerCaCommands(program: Command, globals: GlobalOptions): void {
  const api = () => connect(globals);
  const ca = program.command('ca').description("HTTPS certificates: the CA clients pin and the server certificate");

  ca.command('show')
    .description('show the CA (its SHA-256 is what `fleetboot-agent enroll --ca-sha256` takes) and the server certificate, then the CA certificate (PEM)')
    .option('--pem', 'print the CA certificate (PEM) alone, e.g. to import it in a browser')
    .action(async (o: { pem?: boolean }) => {
      const t = await (await api()).request<TlsInfo>('GET', '/tls');
      if (o.pem) {
        if (t.ca === null) throw new CliError('The server has no CA certificate to print: its configured certificate (https.certFile) came without https.caFile');
        process.stdout.write(t.ca.pem);
        return;
      }
      if (globals.json) return printJson(t);
      process.stdout.write(formatTlsInfo(t));
      if (t.ca !== null) {
        printLine('');
        process.stdout.write(t.ca.pem);
      }
    });

  ca.command('renew')
    .description('issue a new server certificate under the same CA and serve it at once (enrolled agents keep working: they pin the CA); with a configured certificate, read its files again')
    .action(async () => {
      const t = await (await api()).request<TlsInfo>('POST', '/tls/renew');
      if (globals.json) return printJson(t);
      printLine(`Renewed the server certificate: SHA-256 ${t.server.sha256}, valid until ${t.server.notAfter}, for ${t.server.names.join(', ')}`);
      if (t.ca !== null) printLine(`The CA is unchanged: SHA-256 ${t.ca.sha256}`);
    });
}
