/** What the benchmarks share: running peers, reading perfdhcp, process memory. */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { program, type Argv } from '../src/lib/programs.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Append one run's report to a results file (started with `# title` when new), and print it. */
export function appendResults(out: string, title: string, text: string): void {
  if (!existsSync(out)) writeFileSync(out, `# ${title}\n\n`);
  appendFileSync(out, `${text}\n`);
  process.stdout.write(`\n${text}\nappended to ${out}\n`);
}

/** The first capture group of `re` in `text` as a number, NaN when absent. */
export function num(re: RegExp, text: string): number {
  const m = re.exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Run argv and resolve with its stdout+stderr when it exits (SIGKILL after timeoutMs). */
export function runCapture(argv: Argv, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const [cmd, ...rest] = argv;
    const c = spawn(program(cmd), rest, { stdio: ['ignore', 'pipe', 'pipe'] });
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

/**
 * Undo steps (remove a lab, detach a loop device, unmount) run last-in
 * first-out, once: `run()` from a finally, or on SIGINT/SIGTERM, after which
 * the process exits with 130. A failing step is reported and the rest still run.
 */
export function cleanupStack(): { push(step: () => Promise<void> | void): void; run(): Promise<void> } {
  const steps: Array<() => Promise<void> | void> = [];
  let running: Promise<void> | null = null;
  const run = (): Promise<void> => {
    running ??= (async () => {
      for (let step = steps.pop(); step; step = steps.pop()) {
        try {
          await step();
        } catch (e) {
          process.stderr.write(`cleanup: ${(e as Error).message}\n`);
        }
      }
    })();
    return running;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up\n`);
      void run().then(() => process.exit(130));
    });
  }
  return { push: (step) => void steps.push(step), run };
}

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
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

/** Two-sided 97.5 % quantiles of Student's t for 1-30 degrees of freedom. */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/**
 * The geometric mean of paired ratios (each the peer's time over ours in one
 * repetition, the two runs side by side) with its 95 % confidence interval
 * (t interval on the logarithms). Pairing removes the drift of a shared
 * host between repetitions; the interval says whether a difference is more
 * than that host's noise. n < 2 gives an interval of NaN.
 */
export function pairedRatio(ratios: readonly number[]): { mean: number; low: number; high: number; n: number } {
  const logs = ratios.filter((r) => Number.isFinite(r) && r > 0).map(Math.log);
  const n = logs.length;
  if (n === 0) return { mean: NaN, low: NaN, high: NaN, n };
  const m = logs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean: Math.exp(m), low: NaN, high: NaN, n };
  const sd = Math.sqrt(logs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1));
  const df = n - 1;
  const t = T975[df - 1] ?? 1.96 + 2.4 / df;
  const half = (t * sd) / Math.sqrt(n);
  return { mean: Math.exp(m), low: Math.exp(m - half), high: Math.exp(m + half), n };
}
