/** What the benchmarks share: running peers, reading perfdhcp, process memory. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The first capture group of `re` in `text` as a number, NaN when absent. */
export function num(re: RegExp, text: string): number {
  const m = re.exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Run argv and resolve with its stdout+stderr when it exits (SIGKILL after timeoutMs). */
export function runCapture(argv: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const [cmd, ...rest] = argv;
    const c = spawn(cmd as string, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('exit', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

/**
 * perfdhcp's counters: of the whole output, or of one exchange's block
 * ("***Statistics for: DISCOVER-OFFER***", "REQUEST-ACK") when `exchange` is given.
 */
export function perfdhcpStats(out: string, exchange?: string): { sent: number; received: number; avgMs: number; maxMs: number } {
  let text = out;
  if (exchange !== undefined) {
    const i = out.indexOf(`Statistics for: ${exchange}`);
    if (i < 0) return { sent: 0, received: 0, avgMs: NaN, maxMs: NaN };
    text = out.slice(i, i + 2000);
  }
  return {
    sent: num(/sent packets:\s*(\d+)/, text),
    received: num(/received packets:\s*(\d+)/, text),
    avgMs: num(/avg delay:\s*([\d.]+)\s*ms/, text),
    maxMs: num(/max delay:\s*([\d.]+)\s*ms/, text),
  };
}

/** Peak resident memory (VmHWM) of a process in MiB, NaN when unknown. */
export function vmHwmMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    return num(/VmHWM:\s*(\d+)\s*kB/, readFileSync(`/proc/${pid}/status`, 'utf8')) / 1024;
  } catch {
    return NaN;
  }
}

/** Wait until `file` matches `re` (a peer's log saying it is ready). */
export async function waitForText(file: string, re: RegExp, ms: number): Promise<void> {
  const read = (): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (re.test(read())) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${re} in ${file}: ${read().slice(-2000)}`);
}
