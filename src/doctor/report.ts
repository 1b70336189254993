/**
 * `fleetboot doctor`'s results: one check per line (status, what it
 * looked at, what it saw, what to do about it), JSON for scripts, and the
 * exit status (1 when a check failed; warnings and information do not fail).
 * Pure.
 */

/**
 * ok: as it should be. warn: may be a problem, or doctor cannot tell. fail:
 * clients will not boot (or the server is at risk) until it is fixed. info:
 * facts to read, never a problem.
 */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'info';

export interface Check {
  /** Stable, for scripts: "port:udp/69", "firewall:tcp/8080", "dhcp-servers"... */
  id: string;
  status: CheckStatus;
  /** What was checked: "port udp/69 (TFTP)". */
  title: string;
  /** What was seen. */
  detail: string;
  /** What to do about it (failures and warnings), else null. */
  fix: string | null;
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok', warn: 'warn', fail: 'FAIL', info: 'info' };

/** One line: "FAIL  port udp/69 (TFTP): held by dnsmasq (pid 12) -> stop it or set tftp.port". */
export function formatCheck(c: Check): string {
  const flat = (s: string): string => s.replace(/\s*\n\s*/g, ' ');
  return `${LABEL[c.status].padEnd(4)}  ${flat(c.title)}: ${flat(c.detail)}${c.fix !== null && c.status !== 'ok' && c.status !== 'info' ? ` -> ${flat(c.fix)}` : ''}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Every check on its line, then a summary line. */
export function formatReport(checks: readonly Check[]): string {
  const n = (s: CheckStatus): number => checks.filter((c) => c.status === s).length;
  const summary = `${n('fail') === 0 ? 'No problem found' : plural(n('fail'), 'check') + ' failed'}: ${n('ok')} ok, ${plural(n('warn'), 'warning')}, ${plural(n('fail'), 'failure')}.`;
  return [...checks.map(formatCheck), summary].join('\n') + '\n';
}

/** 1 when a check failed, else 0. */
export function exitStatus(checks: readonly Check[]): number {
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}

/** "never", "12 s ago", "5 min ago", "3 h ago", "2 d ago" (a time in the future: "0 s ago"). */
export function ago(iso: string | null, nowMs: number): string {
  if (iso === null) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'never';
  const s = Math.max(0, Math.round((nowMs - t) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.floor(s / 60)} min ago`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}
