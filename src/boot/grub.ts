/**
 * GRUB configurations, as text, for x64 UEFI machines on the Secure Boot
 * path (firmware -> Debian's signed shim -> Debian's signed GRUB ->
 * Debian-signed kernel). Pure: no I/O. The boot decision is the same as on
 * the iPXE path (src/boot/decide.ts); only its rendering differs.
 *
 * How the chain reaches these files:
 * - the proxyDHCP (or the DHCP server) hands x64 UEFI PXE firmware
 *   `shimx64.efi`; shim loads `grubx64.efi` from the same TFTP server and
 *   directory; Debian's network GRUB (grubnetx64.efi, prefix `/grub`) reads
 *   `/grub/grub.cfg` over TFTP: `rootConfig()`, written into the TFTP root
 *   at start;
 * - that file asks for `/fleetboot/grub/<mac>/sb-on.cfg` (GRUB runs locked
 *   down: Secure Boot is on) or `sb-off.cfg`; the TFTP server answers with
 *   the machine's decision rendered here (src/imaging/grub-files.ts);
 * - kernels, initrds and the boot environment come over TFTP too, as
 *   `/fleetboot/entries/<entry>/<file>` and `/fleetboot/env/<file>`:
 *   TFTP, which the firewall opens anyway, is
 *   the one way to the server (Debian's signed grubnetx64.efi has no HTTP
 *   module at all); an entry whose kernel or initrd is a URL is refused
 *   on this path with a message.
 *
 * How GRUB reads a script (grub-core/script/yylex.l, execute.c), and so
 * what a value must never contain: words split at whitespace; `$name` and
 * `${name}` expand outside single quotes; `;`, `&`, `|`, `<`, `>`, `{`, `}`
 * and newlines end or group commands; inside single quotes everything is
 * literal up to the next `'`, which cannot be escaped there. So every value
 * goes into single quotes, and a value containing `'` or a control
 * character is refused (names and file names are checked by pattern; the
 * kernel command line word by word); display text is sanitised.
 */
import { entryProblem, type ScriptEntry } from './ipxe.js';
import { IPV4_PATTERN } from '../model/validate.js';
import type { BootDecision, MenuReason } from './decide.js';

/** Where the chain's files sit in the TFTP root (shim looks for grubx64.efi beside itself). */
export const SHIM_FILE = 'shimx64.efi';
export const GRUB_FILE = 'grubx64.efi';
/** Debian's grubnetx64.efi has the prefix /grub: it reads /grub/grub.cfg from the TFTP server that booted it. */
export const GRUB_ROOT_CONFIG = 'grub/grub.cfg';
/** Debian's signed files, as scripts/install-deps.sh extracts them into uefi.signedDir, and their names in the TFTP root. */
export const SIGNED_FILES = [
  { from: 'shimx64.efi.signed', to: SHIM_FILE, pkg: 'shim-signed' },
  { from: 'grubnetx64.efi.signed', to: GRUB_FILE, pkg: 'grub-efi-amd64-signed' },
] as const;
/** The TFTP names the server answers itself (never files of the TFTP root). */
export const VIRTUAL_PREFIX = 'fleetboot/';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const TOKEN_RE = /^[0-9a-f]{16,128}$/;
const IPV4_RE = new RegExp(IPV4_PATTERN);
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Why `word` cannot be one single-quoted GRUB word, or null when it can. */
export function grubWordProblem(word: string): string | null {
  if (word.length > 4096) return 'is longer than 4096 characters';
  for (const ch of word) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || c > 0x7e) return `contains the character U+${c.toString(16).toUpperCase().padStart(4, '0')} (only printable ASCII is allowed)`;
  }
  if (word.includes("'")) return 'contains a single quote, which GRUB cannot take inside a quoted word';
  return null;
}

/** One literal GRUB word. Throws on what grubWordProblem refuses: callers check first. */
export function q(word: string): string {
  const p = grubWordProblem(word);
  if (p !== null) throw new RangeError(`GRUB word ${JSON.stringify(word.slice(0, 80))} ${p}`);
  return `'${word}'`;
}

/** Display text (echo, menu titles): single-quoted, with quotes, control and non-ASCII characters as "_". */
export function grubText(text: string): string {
  const s = text
    .replace(/[^\x20-\x7e]|'/g, '_')
    .replace(/ +/g, ' ')
    .trim()
    .slice(0, 400);
  return `'${s}'`;
}

/**
 * How GRUB reads one source of an entry: a TFTP path on the server. Debian's
 * signed network GRUB has no HTTP module (tried: "disk `http,...' not
 * found"), so an http(s):// source cannot be reached on this path.
 */
export function grubSource(entryName: string, source: string): { path: string } | { problem: string } {
  if (/^https?:\/\//i.test(source)) return { problem: `source ${JSON.stringify(source)} is a URL: Debian's signed GRUB fetches only over TFTP, from this server (upload the file into the entry)` };
  if (!SAFE_NAME.test(entryName) || !SAFE_FILE.test(source)) return { problem: `source ${JSON.stringify(source)} is not a valid file name` };
  return { path: `/${VIRTUAL_PREFIX}entries/${entryName}/${source}` };
}

/**
 * Why `entry` cannot boot through GRUB, or null when it can: what iPXE
 * refuses, plus sources GRUB cannot reach and command-line words it
 * cannot quote.
 */
export function grubEntryProblem(entry: ScriptEntry): string | null {
  const base = entryProblem(entry);
  if (base !== null) return base;
  for (const s of [entry.kernel, ...entry.initrds]) {
    const r = grubSource(entry.name, s);
    if ('problem' in r) return r.problem;
  }
  for (const w of entry.cmdline.split(' ')) {
    if (w === '') continue;
    const p = grubWordProblem(w);
    if (p !== null) return `command line word ${JSON.stringify(w)} ${p}`;
  }
  return null;
}

/**
 * The static /grub/grub.cfg: ask the server for this machine's
 * configuration, saying whether GRUB runs locked down (Debian's GRUB sets
 * `lockdown=y` when the firmware booted it with Secure Boot on).
 */
export function rootConfig(): string {
  return [
    '# Fleetboot: written by the server at each start (uefi.secureBoot); edits are lost.',
    "# Debian's signed GRUB reads this over TFTP, then asks the server what this machine boots.",
    'set fb_sb=off',
    'if [ "${lockdown}" = "y" ]; then set fb_sb=on; fi',
    'echo "Fleetboot: ${net_default_mac}, Secure Boot ${fb_sb}, asking the server"',
    `configfile "/${VIRTUAL_PREFIX}grub/\${net_default_mac}/sb-\${fb_sb}.cfg"`,
    "echo 'Fleetboot: the server sent no configuration for this machine; see its log. Back to the firmware in 10 seconds'",
    'sleep 10',
    'exit',
    '',
  ].join('\n');
}

/** The per-machine names GRUB asks for: `fleetboot/grub/<mac>/<what>.cfg`. */
export type GrubRequest = { kind: 'decide'; mac: string; secureBoot: boolean } | { kind: 'tool'; mac: string; tool: 'register' | 'inventory' };

/** Read a per-machine GRUB name (without the leading "/"), or null when it is not one. */
export function parseGrubRequest(name: string): GrubRequest | null {
  const m = /^fleetboot\/grub\/([0-9A-Fa-f:]{17})\/(sb-on|sb-off|register|inventory)\.cfg$/.exec(name.replace(/^\/+/, ''));
  if (!m) return null;
  const mac = (m[1] as string).toLowerCase();
  if (!MAC_RE.test(mac)) return null;
  const what = m[2] as string;
  if (what === 'register' || what === 'inventory') return { kind: 'tool', mac, tool: what };
  return { kind: 'decide', mac, secureBoot: what === 'sb-on' };
}

/** Lines that boot a kernel with initrds, falling through to the lines after them when a step fails. */
function bootLines(kernel: string, args: readonly string[], initrds: readonly string[]): string[] {
  const lines = [`if linux ${[kernel, ...args].map(q).join(' ')}; then`];
  if (initrds.length > 0) lines.push(`  if initrd ${initrds.map(q).join(' ')}; then`, '    boot', '  fi');
  else lines.push('  boot');
  lines.push('fi');
  return lines;
}

/** Back to the firmware, which tries its next boot option (the local disk). iPXE's `exit` does the same on UEFI. */
function localLines(message: string, pauseSeconds: number): string[] {
  return [`echo ${grubText(`Fleetboot: ${message}`)}`, ...(pauseSeconds > 0 ? [`sleep ${pauseSeconds}`] : []), 'exit'];
}

/** An entry refused on the GRUB path (source GRUB cannot reach, or a kernel Secure Boot would refuse): the reason, per entry name. */
export type EntryRefusals = ReadonlyMap<string, string>;

function entryLines(entry: ScriptEntry, refused: string | undefined, warning?: string): string[] {
  const problem = refused ?? grubEntryProblem(entry);
  if (problem !== null) return localLines(`entry ${entry.name} cannot boot here: ${problem}; trying the local disk in 10 seconds`, 10);
  const src = (s: string): string => {
    const r = grubSource(entry.name, s);
    if ('problem' in r) throw new RangeError(r.problem); // checked by grubEntryProblem
    return r.path;
  };
  return [
    ...(warning !== undefined ? [`echo ${grubText(`Fleetboot: warning: ${warning}`)}`, 'sleep 3'] : []),
    `echo ${grubText(`Fleetboot: booting entry ${entry.name}`)}`,
    ...bootLines(
      src(entry.kernel),
      entry.cmdline.split(' ').filter((w) => w !== ''),
      entry.initrds.map(src),
    ),
    ...localLines(`booting entry ${entry.name} failed, trying the local disk in 5 seconds`, 5),
  ];
}

/** The boot environment for a task: Fleetboot's kernel and initramfs with the server URL, the task and its token. */
export function bootEnvConfig(opts: { baseUrl: string; mac: string; hostName: string | null; taskId: number; taskType: string; token: string; kernelArgs: string; clientIp: string | null }): string {
  if (!Number.isSafeInteger(opts.taskId) || opts.taskId < 1) throw new RangeError(`Task id ${opts.taskId} is not a positive integer`);
  if (!TOKEN_RE.test(opts.token)) throw new RangeError('The task token must be 16-128 lower-case hex digits');
  if (!MAC_RE.test(opts.mac)) throw new RangeError(`MAC ${JSON.stringify(opts.mac)} is not a normalised MAC address`);
  if (opts.clientIp !== null && !IPV4_RE.test(opts.clientIp)) throw new RangeError(`Client address ${JSON.stringify(opts.clientIp)} is not a dotted-quad IPv4 address`);
  const who = opts.hostName ? `${opts.mac} (${opts.hostName})` : opts.mac;
  const args = [
    `fleetboot.url=${opts.baseUrl}`,
    `fleetboot.task=${opts.taskId}`,
    `fleetboot.token=${opts.token}`,
    ...(opts.clientIp !== null ? [`fleetboot.ip=${opts.clientIp}`] : []),
    `BOOTIF=01-${opts.mac.replace(/:/g, '-')}`,
    'console=tty0',
    'console=ttyS0,115200',
    ...opts.kernelArgs.split(' ').filter((w) => w !== ''),
  ];
  return [
    `# Fleetboot boot decision: ${who.replace(/[^A-Za-z0-9 ._:()-]/g, '_')} runs imaging task ${opts.taskId}`,
    `echo ${grubText(`Fleetboot: ${who} runs imaging task ${opts.taskId} (${opts.taskType})`)}`,
    ...bootLines(`/${VIRTUAL_PREFIX}env/vmlinuz`, args, [`/${VIRTUAL_PREFIX}env/initrd.img`]),
    ...localLines('loading the boot environment failed, the task waits for the next network boot', 10),
    '',
  ].join('\n');
}

/** A message, a pause, then back to the firmware. */
export function messageConfig(message: string, pauseSeconds = 5): string {
  return [...localLines(message, pauseSeconds), ''].join('\n');
}

const reasonText: Record<MenuReason, string> = {
  'unknown-host': 'unknown machine',
  unassigned: 'no boot entry assigned',
  'entry-missing': 'assigned boot entry not found',
  'entry-invalid': 'assigned boot entry is invalid',
};

export interface GrubRenderContext {
  baseUrl: string;
  menuTimeoutSeconds: number;
  menuEntries: readonly ScriptEntry[];
  /** GRUB runs locked down (Secure Boot on): named in messages. */
  secureBoot: boolean;
  /** Entries that cannot boot on this machine, with the reason (e.g. a kernel with no signature under Secure Boot). */
  refused: EntryRefusals;
  /** Entries that boot with a warning on the screen first (e.g. a signature that does not verify: the machine decides). */
  warnings?: EntryRefusals;
  bootEnv?: { token: string; kernelArgs: string; clientIp: string | null } | null;
  /** Does the menu offer "Register this machine" / "Hardware inventory"? */
  menuTools?: boolean;
}

/** The GRUB configuration for a decision (the iPXE path's renderDecision, for GRUB). */
export function renderGrubDecision(d: BootDecision, ctx: GrubRenderContext): string {
  const head = (what: string): string => `# Fleetboot boot decision: ${what.replace(/[^A-Za-z0-9 ._:(),-]/g, '_')}${ctx.secureBoot ? ' (Secure Boot on)' : ''}`;
  switch (d.kind) {
    case 'invalid-mac':
      return messageConfig(`invalid MAC address in the boot request: ${JSON.stringify(d.rawMac)}`, 10);
    case 'entry': {
      const who = d.host.name ? `${d.mac} (${d.host.name})` : d.mac;
      return [head(`${who} boots entry ${d.entry.name}`), `echo ${grubText(`Fleetboot: ${who} boots entry ${d.entry.name}`)}`, ...entryLines(d.entry, ctx.refused.get(d.entry.name), ctx.warnings?.get(d.entry.name)), ''].join('\n');
    }
    case 'task': {
      const env = ctx.bootEnv ?? null;
      if (env === null) return messageConfig('the imaging boot environment is not built on the server; see its log', 10);
      return bootEnvConfig({ baseUrl: ctx.baseUrl, mac: d.mac, hostName: d.host?.name ?? null, taskId: d.task.id, taskType: d.task.type, token: env.token, kernelArgs: env.kernelArgs, clientIp: env.clientIp });
    }
    case 'wait': {
      const wait = Math.max(1, Math.min(600, Math.floor(d.retrySeconds)));
      return [
        head(`${d.mac} waits`),
        `echo ${grubText(`Fleetboot: ${d.reason}`)}`,
        `echo ${grubText(`Fleetboot: asking again in ${wait} s`)}`,
        `sleep ${wait}`,
        `configfile ${q(`/${VIRTUAL_PREFIX}grub/${d.mac}/sb-${ctx.secureBoot ? 'on' : 'off'}.cfg`)}`,
        '',
      ].join('\n');
    }
    case 'refuse':
      return messageConfig(d.reason, 10);
    case 'fail-task':
      return renderGrubDecision(d.then, ctx);
    case 'register':
      return messageConfig('automatic registration did not start; see the server log', 10);
    case 'local': {
      const who = d.host.name ? `${d.mac} (${d.host.name})` : d.mac;
      return [head(`${who} boots its local disk`), ...localLines(`${who}, ${d.reason}: booting from the local disk`, 0), ''].join('\n');
    }
    case 'menu': {
      const who = d.host?.name ? `${d.mac} (${d.host.name})` : d.mac;
      const title = `${who}, ${reasonText[d.reason]}`;
      if (ctx.menuTimeoutSeconds <= 0) return [head(title), ...localLines(`${title}: booting from the local disk`, 0), ''].join('\n');
      const entries = ctx.menuEntries.filter((e) => entryProblem(e) === null).slice(0, 100);
      const lines = [head(title), `set timeout=${Math.round(ctx.menuTimeoutSeconds)}`, "set default='local'", `echo ${grubText(`Fleetboot: ${title}`)}`];
      lines.push(`menuentry ${grubText('Boot from local disk')} --id local {`, '  exit', '}');
      entries.forEach((e, i) => {
        const why = ctx.refused.get(e.name) ?? grubEntryProblem(e);
        lines.push(`menuentry ${grubText(why === null ? `Entry ${e.name}` : `Entry ${e.name} (cannot boot here)`)} --id ${q(`entry${i}`)} {`, ...entryLines(e, ctx.refused.get(e.name), ctx.warnings?.get(e.name)).map((l) => `  ${l}`), '}');
      });
      if (ctx.menuTools) {
        if (d.host === null) lines.push(`menuentry ${grubText('Register this machine')} --id fb-register {`, `  configfile ${q(`/${VIRTUAL_PREFIX}grub/${d.mac}/register.cfg`)}`, '}');
        lines.push(`menuentry ${grubText('Hardware inventory')} --id fb-inventory {`, `  configfile ${q(`/${VIRTUAL_PREFIX}grub/${d.mac}/inventory.cfg`)}`, '}');
      }
      lines.push('');
      return lines.join('\n');
    }
  }
}
