/**
 * The console's Agents, Packages and Host pages with agents in every
 * state, in Chromium (playwright-core), against the real application
 * (buildApp) listening on loopback, with the built console (web/dist).
 * Two agents are played here with node:crypto (Ed25519) over the real
 * /endpoint/v1 protocol, as test/api-endpoint.test.ts's FakeAgent does:
 * plain HTTP, which only the test-only `endpointOverPlainHttp` lets in
 * (console.browser.test.ts's lab server has no HTTPS, so its agents page
 * shows tokens only). One enrols with a token for a host and runs a
 * package that fails with output; the other enrols without one and waits
 * for approval. Run it under the lab lock (it runs a browser).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/lib/log.js';
import { buildApp } from '../../src/http/app.js';
import { createHost, ensureApiToken, openStore, type Store } from '../../src/store/index.js';
import type { AgentIdentity, WorkItem } from '../../src/model/endpoint.js';
import { fetchTransport, TestAgent } from '../endpoint-helpers.js';
import { assertAccessible, launchBrowser, loginAs, screenshot, ROOT } from './harness.js';

const DESK = '52:54:00:ac:00:01';
const SPARE = '52:54:00:ac:00:02';
const PASSWORD = 'correct horse battery staple';

let dir: string;
let store: Store;
let app: FastifyInstance;
let base: string;
let token: string;
let browser: Browser | null = null;

type Json = Record<string, unknown>;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && !(body instanceof Buffer) ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body instanceof Buffer ? { body } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
}

/** A machine with its own key, speaking /endpoint/v1 over HTTP as fleetboot-agent does (test/endpoint-helpers.ts); every answer must be 200. */
class Machine {
  private readonly agent: TestAgent;
  constructor(identity: AgentIdentity) {
    this.agent = new TestAgent(fetchTransport(() => base), identity);
  }
  get id(): string {
    return this.agent.id;
  }
  async enroll(tok: string | null): Promise<void> {
    const e = await this.agent.enroll(tok);
    assert.equal(e.status, 200, JSON.stringify(e.body));
    const s = await this.agent.open();
    assert.equal(s.status, 200, JSON.stringify(s.body));
  }
  async work(): Promise<WorkItem[]> {
    const w = await this.agent.work();
    assert.equal(w.status, 200, JSON.stringify(w.body));
    return w.work;
  }
  async report(id: number, result: Json): Promise<void> {
    const r = await this.agent.report(id, result);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
}

const identity = (mac: string, hostname: string): AgentIdentity => ({ macs: [mac], smbiosUuid: null, smbiosSerial: `SN-${hostname}`, hostname, os: 'Debian GNU/Linux 12 (bookworm)', agentVersion: '0.1.0' });

describe('the console with endpoint agents in every state, in Chromium', { timeout: 120_000 }, () => {
  const desk = new Machine(identity(DESK, 'desk-os-name'));
  const spare = new Machine(identity(SPARE, 'spare-box'));

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'web', 'dist', 'index.html')), 'the console is not built: node scripts/build-web.mjs');
    dir = mkdtempSync(join(tmpdir(), 'fleetboot-console-agents-'));
    const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8126 } } });
    store = await openStore(config.dataDir);
    token = ensureApiToken(config.dataDir);
    app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token, endpointOverPlainHttp: true, consoleDir: join(ROOT, 'web', 'dist') });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchBrowser();
    assert.equal((await call('POST', '/api/v1/users', { name: 'alice', role: 'admin', password: PASSWORD })).status, 201);
    await createHost(store.db, { mac: DESK, name: 'desk-1' });
    // The desk enrols with a token for its host; the spare without one (pending).
    const tok = await call('POST', '/api/v1/agents/tokens', { host: DESK });
    assert.equal(tok.status, 201, JSON.stringify(tok.body));
    await desk.enroll(String(tok.body['token']));
    await spare.enroll(null);
    // A package that fails, with output.
    const script = Buffer.from('#!/bin/sh\necho installing\nexit 3\n');
    const sha = createHash('sha256').update(script).digest('hex');
    assert.equal((await call('PUT', `/api/v1/packages/files/${sha}`, script, { 'content-type': 'application/octet-stream' })).status, 200);
    assert.equal((await call('POST', '/api/v1/packages', { name: 'office', files: [{ name: 'setup.sh', sha256: sha, executable: true }], argv: ['/bin/sh', 'setup.sh'] })).status, 201);
    assert.equal((await call('POST', '/api/v1/packages/office/deploy', { macs: [DESK] })).status, 201);
    const [item] = await desk.work();
    assert.ok(item?.kind === 'package', `a package for the desk: ${JSON.stringify(item)}`);
    await desk.report(item.id, { status: 'failed', exitCode: 3, durationMs: 1234, stdout: 'installing\nstep 2 of 3\n', stderr: 'setup.sh: disk full\n', message: 'exit code 3' });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await app?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('Agents: the pending agent is approved for the MAC it reported, the active ones listed, one revoked through a dialog naming its host', async () => {
    assert.ok(browser);
    const { ctx, page } = await loginAs(browser, base, 'alice', PASSWORD);
    await page.getByRole('link', { name: 'Agents', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    const pending = page.locator(`tr[data-agent="${spare.id}"]`);
    await pending.filter({ hasText: 'spare-box' }).filter({ hasText: SPARE }).waitFor();
    const active = page.locator(`tr[data-agent="${desk.id}"]`);
    await active.filter({ hasText: 'desk-1' }).filter({ hasText: 'active' }).filter({ hasText: 'desk-os-name' }).filter({ hasText: 'Debian GNU/Linux 12' }).filter({ hasText: '127.0.0.1' }).waitFor();
    await screenshot(page, 'agents-1-pending');
    await assertAccessible(page, 'the agents page with a pending agent');

    await pending.getByRole('button', { name: /Approve/ }).click();
    const dialog = page.getByRole('dialog');
    assert.equal(await dialog.getByLabel('Host MAC').inputValue(), SPARE, 'the MAC it reported is the default');
    await assertAccessible(page, 'the approve dialog');
    await dialog.getByRole('button', { name: `Approve for ${SPARE}` }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByText('No agent is waiting for approval.').waitFor();
    const approved = page.locator(`tr[data-agent="${spare.id}"]`).filter({ hasText: 'active' });
    await approved.waitFor();

    await approved.getByRole('button', { name: /Revoke/ }).click();
    // Approved for a MAC no host had, the host was made (unnamed): the dialog names it by its MAC.
    await dialog.getByRole('heading', { name: `Revoke the agent of ${SPARE}` }).waitFor();
    await dialog.getByRole('button', { name: `Revoke the agent of ${SPARE}` }).click();
    await page.locator(`tr[data-agent="${spare.id}"]`).filter({ hasText: 'revoked' }).waitFor();
    const agent = await call('GET', `/api/v1/agents/${spare.id}`);
    assert.equal(agent.body['state'], 'revoked');
    await screenshot(page, 'agents-2-revoked');
    await assertAccessible(page, 'the agents page');
    await ctx.close();
  });

  test("Packages: the failed run's row opens onto its stdout and stderr; the host page shows its agent and queues work through it", async () => {
    assert.ok(browser);
    const { ctx, page } = await loginAs(browser, base, 'alice', PASSWORD);
    await page.goto('/ui/packages');
    await page.getByRole('heading', { level: 1, name: 'Packages' }).waitFor();
    const run = page.locator('tr[data-work]').filter({ hasText: 'package office revision 1' });
    await run.filter({ hasText: 'failed' }).filter({ hasText: '1.2 s' }).waitFor();
    const toggle = run.getByRole('button', { name: /Show output/ });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    await toggle.click();
    assert.equal(await run.getByRole('button', { name: /Hide output/ }).getAttribute('aria-expanded'), 'true');
    const out = page.locator('tr.output-row pre');
    assert.deepEqual((await out.allInnerTexts()).map((t) => t.trim()), ['installing\nstep 2 of 3', 'setup.sh: disk full']);
    await screenshot(page, 'agents-3-package-output');
    await assertAccessible(page, 'the packages page with a run opened');

    await page.goto(`/ui/hosts/${DESK}`);
    const facts = page.getByTestId('host-agent');
    await facts.filter({ hasText: 'active' }).filter({ hasText: desk.id }).waitFor();
    await page.getByRole('button', { name: 'Refresh inventory' }).click();
    await page.locator('tr[data-work]').filter({ hasText: 'refresh the inventory' }).filter({ hasText: 'queued' }).waitFor();
    await page.getByRole('button', { name: 'Reboot…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: `Reboot desk-1 (${DESK})` }).waitFor();
    await dialog.getByRole('button', { name: 'Reboot desk-1' }).click();
    await page.locator('tr[data-work]').filter({ hasText: 'reboot' }).filter({ hasText: 'queued' }).waitFor();
    const kinds = (await desk.work()).map((w) => w.kind).sort();
    assert.deepEqual(kinds, ['inventory', 'reboot'], 'the agent is handed what the page queued');
    await screenshot(page, 'agents-4-host');
    await assertAccessible(page, 'the host page with its agent');
    await ctx.close();
  });
});
