/**
 * The browser tests' tools: Debian's Chromium driven by playwright-core (no
 * browser download), a tunnel from loopback to a server inside a lab
 * namespace whose connections the test can cut (a real dropped
 * connection: EventSource reconnects by itself), axe-core run in the page,
 * and screenshots saved for a person to look at.
 */
import assert from 'node:assert/strict';
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { program, PROGRAMS } from '../../src/lib/programs.js';

export const ROOT = new URL('../..', import.meta.url).pathname;
/** Screenshots of each page, for a person to look at (kept by CI as test-results/console/). */
export const SCREENS = join(ROOT, 'test-results', 'console');

/** Chromium's absolute path (playwright wants a path, not a name in PATH); throws naming the package when it is missing. */
function chromiumPath(): string {
  const name = program('chromium');
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${name} is not installed (Debian package ${PROGRAMS.chromium.pkg}): run bash scripts/install-deps.sh --with-test`);
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/**
 * 127.0.0.1:PORT -> a Unix socket served by ns-forward.mjs inside the lab
 * namespace -> the server. cut() destroys every open connection (the
 * browser sees them drop); new ones go through again.
 */
export class Tunnel {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly port: number,
  ) {}

  static async open(unixPath: string): Promise<Tunnel> {
    const sockets = new Set<Socket>();
    const server = createServer((inbound) => {
      const out = connect({ path: unixPath });
      sockets.add(inbound);
      sockets.add(out);
      inbound.pipe(out).pipe(inbound);
      const end = (): void => {
        inbound.destroy();
        out.destroy();
        sockets.delete(inbound);
        sockets.delete(out);
      };
      for (const s of [inbound, out]) {
        s.on('error', end);
        s.on('close', end);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('tunnel: no TCP address');
    return new Tunnel(server, sockets, addr.port);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drop every open connection now. */
  cut(): number {
    const n = this.sockets.size;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface AxeResult {
  violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }>;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core (WCAG 2 A/AA rules) on the page as it is now; fails on any serious or critical violation, naming rule and elements. */
export async function assertAccessible(page: Page, what: string): Promise<void> {
  // evaluate() goes through the DevTools protocol: the page's CSP (script-src 'self') does not apply to it.
  await page.evaluate(axeSource);
  // (An expression, not a function: this file is compiled without the DOM's types.)
  const r = (await page.evaluate(
    "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] }).then((r) => ({ violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })) }))",
  )) as AxeResult;
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 5).join(', ')})`),
    [],
    `${what}: accessibility violations`,
  );
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENS, { recursive: true });
  await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
}

/** A new browser context logged in as `name` through the login form. */
export async function loginAs(browser: Browser, base: string, name: string, password: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto('/ui/');
  await page.getByLabel('User name').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  assert.deepEqual(problems, [], `uncaught errors in the page after logging in as ${name}`);
  return { ctx, page };
}
