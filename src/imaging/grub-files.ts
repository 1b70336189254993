/**
 * What the TFTP server answers itself on the Secure Boot path
 * (uefi.secureBoot; the chain is described in src/boot/grub.ts):
 *
 *   fleetboot/grub/<mac>/sb-on.cfg | sb-off.cfg   the machine's boot decision, as a GRUB configuration
 *   fleetboot/grub/<mac>/register.cfg | inventory.cfg   the menu's imaging items
 *   fleetboot/env/vmlinuz | initrd.img            the imaging boot environment
 *   fleetboot/entries/<entry>/<file>              files of boot entries (only those the entry uses)
 *
 * Anything else under fleetboot/ is "not found"; other names are the TFTP
 * root's. These are what the HTTP boot endpoints hand out (GET /boot/decide,
 * /boot/task, /boot/env, /boot/entries), no more: GRUB reaches the server
 * over TFTP only (src/boot/grub.ts says why).
 *
 * Under Secure Boot (GRUB runs locked down: the name says sb-on), a kernel
 * the server holds is checked before it is named in a configuration
 * (src/boot/authenticode.ts): an entry whose kernel has no signature is
 * refused with the reason on the machine's screen and in the log, instead
 * of GRUB's bare "bad shim signature"; one whose signature does not verify
 * (changed after signing) is shown with a warning and left to the
 * machine's chain, which may trust the file by hash (MOK) and otherwise
 * refuses it.
 *
 * A generated configuration holds a task's token: it is written to a
 * private directory (0700, file 0600), opened and unlinked at once, so it
 * lives only in the open descriptor of its transfer. The same request from
 * the same address within a few seconds gets the same answer (GRUB asks
 * again after a lost first packet; a second decision would hand out a
 * second token).
 */
import { mkdtemp, open, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FleetbootConfig } from '../config/config.js';
import { verifyAuthenticode } from '../boot/authenticode.js';
import { parseDecideQuery } from '../boot/decide.js';
import { bootEnvConfig, messageConfig, parseGrubRequest, renderGrubDecision, VIRTUAL_PREFIX } from '../boot/grub.js';
import type { ScriptEntry } from '../boot/ipxe.js';
import type { Logger } from '../lib/log.js';
import { openInRoot, type SafeOpenResult } from '../lib/safe-path.js';
import type { Store } from '../store/db.js';
import { entryDir, getEntry, IPV4_PATTERN } from '../store/index.js';
import type { BootDecider } from './boot-decider.js';
import { BOOTENV_INITRD, BOOTENV_KERNEL } from './tasks.js';

const IPV4 = new RegExp(IPV4_PATTERN);
/** How long the same request from the same address gets the same generated answer. */
const REPEAT_MS = 5_000;

export interface GrubFilesDeps {
  store: Store;
  config: Readonly<FleetbootConfig>;
  log: Logger;
  decider: BootDecider;
  /** The base URL the boot environment reports to (no trailing slash). */
  baseUrl: () => string;
}

export interface GrubFiles {
  /** For the TFTP server's `resolve` option. */
  resolve(name: string, clientIp: string): Promise<SafeOpenResult | null>;
  close(): Promise<void>;
}

/** What Secure Boot will make of a kernel: refused here (no signature), a warning (a signature that does not verify), or nothing. */
interface Judgement {
  refuse: string | null;
  warn: string | null;
}

export async function createGrubFiles(deps: GrubFilesDeps): Promise<GrubFiles> {
  const { store, config, log, decider } = deps;
  // Private: generated files hold task tokens.
  const dir = await mkdtemp(join(tmpdir(), 'fleetboot-grub-'));
  const recent = new Map<string, { at: number; text: string }>();
  const signatures = new Map<string, { key: string; judgement: Judgement }>();

  /**
   * What Secure Boot will make of the kernel at `path`, cached per file
   * version. No signature at all: refused here, with the reason. A
   * signature that does not verify (the file changed after signing): a
   * warning, and the machine's chain decides (its db or MOK list may trust
   * the file by hash; otherwise shim refuses it).
   */
  async function judge(path: string, what: string): Promise<Judgement> {
    let key: string;
    try {
      const st = await stat(path);
      key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return { refuse: `${what} is missing on the server`, warn: null };
    }
    const known = signatures.get(path);
    if (known && known.key === key) return known.judgement;
    const v = verifyAuthenticode(await readFile(path));
    let judgement: Judgement;
    if (v.signed) {
      judgement = { refuse: null, warn: null };
      log.info({ subsystem: 'tftp', file: path, signer: v.signer, issuer: v.issuer, digest: v.digest }, `${what}: signed by ${v.signer} (${v.issuer})`);
    } else if (!v.present) {
      judgement = { refuse: `${what} is not signed for Secure Boot: ${v.reason}`, warn: null };
      log.warn({ subsystem: 'tftp', file: path, reason: v.reason }, `${what}: refused for Secure Boot machines: ${v.reason}`);
    } else {
      judgement = { refuse: null, warn: `${what}: ${v.reason}; Secure Boot will refuse it unless the machine trusts this file by hash` };
      log.warn({ subsystem: 'tftp', file: path, reason: v.reason }, `${what}: its signature does not verify (${v.reason}); Secure Boot machines will refuse it unless they trust it by hash`);
    }
    signatures.set(path, { key, judgement });
    return judgement;
  }

  /** Entries Secure Boot machines are refused here, and entries they get with a warning, by name. */
  async function judgeEntries(entries: readonly ScriptEntry[]): Promise<{ refused: Map<string, string>; warnings: Map<string, string> }> {
    const refused = new Map<string, string>();
    const warnings = new Map<string, string>();
    for (const e of entries) {
      if (/^https?:\/\//i.test(e.kernel)) continue; // the GRUB path refuses URL sources anyway (src/boot/grub.ts)
      let path: string;
      try {
        path = join(entryDir(store.entriesDir, e.name), e.kernel);
      } catch {
        continue; // an invalid name: grub.ts refuses it anyway
      }
      const j = await judge(path, `the kernel ${e.kernel} of entry ${e.name}`);
      if (j.refuse !== null) refused.set(e.name, j.refuse);
      if (j.warn !== null) warnings.set(e.name, j.warn);
    }
    return { refused, warnings };
  }

  /** A generated text as an open file (see the header). */
  async function textFile(text: string): Promise<SafeOpenResult> {
    const path = join(dir, `${randomBytes(8).toString('hex')}.cfg`);
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(text);
    } catch (err) {
      await fh.close();
      await unlink(path).catch(() => undefined);
      throw err;
    }
    const ro = await open(path, 'r');
    await fh.close();
    await unlink(path);
    const st = await ro.stat();
    return { ok: true, handle: ro, path, relative: path.slice(dir.length + 1), size: st.size, stat: st };
  }

  async function generate(name: string, clientIp: string): Promise<string> {
    const req = parseGrubRequest(name);
    if (req === null) return messageConfig(`no such configuration: ${name.slice(0, 120)}`, 10);
    const ip = clientIp;
    if (req.kind === 'tool') {
      const out = await decider.menuTask(req.mac, req.tool, ip);
      if (out.kind === 'limited' || out.kind === 'message') return messageConfig(out.message, 10);
      return bootEnvConfig({ baseUrl: deps.baseUrl(), mac: req.mac, hostName: out.hostName, taskId: out.task.id, taskType: out.task.type, token: out.token, kernelArgs: config.imaging.kernelArgs, clientIp: IPV4.test(ip) ? ip : null });
    }
    const q = parseDecideQuery({ mac: req.mac, platform: 'efi', buildarch: 'x86_64' });
    const out = await decider.decide(q, ip, 'grub', { secureBoot: req.secureBoot });
    if (out.kind === 'limited') return messageConfig(out.message, 10);
    const d = out.decision;
    let refused = new Map<string, string>();
    let warnings = new Map<string, string>();
    if (req.secureBoot) {
      // What the machine is shown: a failed task's machine boots as it would without the task.
      const shown = d.kind === 'fail-task' ? d.then : d;
      const target = shown.kind === 'entry' ? [shown.entry] : shown.kind === 'menu' ? out.menuEntries : [];
      ({ refused, warnings } = await judgeEntries(target));
      if (shown.kind === 'entry' && refused.has(shown.entry.name)) log.warn({ subsystem: 'tftp', mac: req.mac, ip, entry: shown.entry.name, reason: refused.get(shown.entry.name) }, `boot decision (GRUB): ${req.mac} has Secure Boot on: entry ${shown.entry.name} refused (${refused.get(shown.entry.name) ?? ''})`);
      if (d.kind === 'task') {
        const j = await judge(join(config.imaging.bootEnvDir, BOOTENV_KERNEL), "the boot environment's kernel");
        if (j.refuse !== null) return messageConfig(`${j.refuse}; rebuild it from Debian's signed kernel (scripts/build-bootenv.sh)`, 10);
      }
    }
    return renderGrubDecision(d, {
      baseUrl: deps.baseUrl(),
      menuTimeoutSeconds: config.boot.menuTimeoutSeconds,
      menuEntries: out.menuEntries,
      secureBoot: req.secureBoot,
      refused,
      warnings,
      bootEnv: out.token !== null ? { token: out.token, kernelArgs: config.imaging.kernelArgs, clientIp: IPV4.test(ip) ? ip : null } : null,
      menuTools: true,
    });
  }

  return {
    async resolve(rawName, clientIp) {
      const name = rawName.replace(/^\/+/, '');
      if (!name.startsWith(VIRTUAL_PREFIX)) return null;
      const rest = name.slice(VIRTUAL_PREFIX.length);
      const env = /^env\/([^/]+)$/.exec(rest);
      if (env) {
        const file = env[1] as string;
        if (file !== BOOTENV_KERNEL && file !== BOOTENV_INITRD) return { ok: false, reason: 'not-found', message: `the boot environment has no ${file}` };
        return openInRoot(config.imaging.bootEnvDir, file);
      }
      const ent = /^entries\/([^/]+)\/([^/]+)$/.exec(rest);
      if (ent) {
        const entryName = ent[1] as string;
        const file = ent[2] as string;
        let entry: Awaited<ReturnType<typeof getEntry>>;
        try {
          entry = await getEntry(store.db, entryName);
        } catch {
          entry = null;
        }
        // Only files the entry uses (not leftovers of a failed upload).
        if (!entry || (entry.kernel !== file && !entry.initrds.includes(file))) return { ok: false, reason: 'not-found', message: `no file ${file} in boot entry ${entryName}` };
        return openInRoot(entryDir(store.entriesDir, entryName), file);
      }
      if (!rest.startsWith('grub/')) return { ok: false, reason: 'not-found', message: `${name} is not a file the server generates` };
      const key = `${clientIp} ${name}`;
      const now = Date.now();
      for (const [k, v] of recent) if (now - v.at > REPEAT_MS) recent.delete(k);
      let text = recent.get(key)?.text;
      if (text === undefined) {
        text = await generate(name, clientIp);
        recent.set(key, { at: now, text });
      }
      return textFile(text);
    },
    async close() {
      recent.clear();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
