/**
 * iPXE scripts, as text. Pure: no I/O.
 *
 * How iPXE reads a script (ipxe/src/image/script.c, core/exec.c, core/getopt.c)
 * and therefore what a value from the database must never contain:
 * - lines end at "\n" (a trailing "\r" is dropped); a line ending in "\" is
 *   joined with the next one;
 * - a line is split into words at whitespace, with NO quoting or escaping;
 *   a word that starts with "#" starts a comment, and the words "||", "&&"
 *   and ";" end a command and start another;
 * - each word is then expanded: "${name}" (repeatedly, until none is left) is
 *   replaced by a setting, so "${" cannot be written literally at all;
 * - options are parsed only up to the first word that is not an option, so
 *   words after a URL are never taken as options of `kernel`.
 * So every value is checked (names by pattern, URLs by character class,
 * command lines by the rules above) and refused rather than escaped: iPXE
 * has no escape syntax to offer. Display text is sanitised instead.
 */
import { IPV4_PATTERN } from '../model/validate.js';

/** The settings iPXE is asked to report in the decision request. */
const DECIDE_QUERY =
  'mac=${net0/mac:hexhyp}&uuid=${uuid}&platform=${platform:uristring}&buildarch=${buildarch:uristring}' +
  '&manufacturer=${manufacturer:uristring}&product=${product:uristring}&serial=${serial:uristring}&asset=${asset:uristring}';

const URL_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;

/** Why `url` cannot go into an iPXE script as one word, or null when it can. */
export function ipxeUrlProblem(url: string): string | null {
  if (!/^https?:\/\//i.test(url)) return 'is not an http:// or https:// URL';
  if (url.length > 2048) return 'is longer than 2048 characters';
  // Excludes whitespace, control characters, quotes, backslash, "{" and "}"
  // (so no "${...}" expansion and no line continuation).
  if (!URL_CHARS.test(url)) return 'contains characters not allowed in a URL (whitespace, control characters, quotes, braces or backslashes)';
  try {
    const u = new URL(url);
    if (u.hostname === '') return 'has no host';
  } catch {
    return 'is not a valid URL';
  }
  return null;
}

/**
 * Why `text` cannot be appended to an iPXE command line as arguments (a
 * kernel command line), or null when it can.
 */
export function ipxeArgsProblem(text: string): string | null {
  if (text.length > 4096) return 'is longer than 4096 characters';
  for (const ch of text) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || c > 0x7e) {
      return `contains the character U+${c.toString(16).toUpperCase().padStart(4, '0')} (only printable ASCII and spaces are allowed)`;
    }
  }
  if (text.includes('${')) return 'contains "${", which iPXE would expand as a setting';
  if (text.endsWith('\\')) return 'ends with a backslash, which would join the next script line';
  for (const word of text.split(' ')) {
    if (word === '||' || word === '&&' || word === ';') return `contains the word "${word}", an iPXE command separator`;
    if (word.startsWith('#')) return `contains the word "${word}": a word starting with "#" is an iPXE comment`;
  }
  return null;
}

/** Display text (echo, menu titles): anything unusual becomes "_". */
export function ipxeText(text: string): string {
  const s = text
    .replace(/[^A-Za-z0-9 ._:,/()+=@'-]/g, '_')
    .replace(/ +/g, ' ')
    .trim();
  return s.replace(/(^|\s)([-#])/g, '$1_');
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

function assertSafe(what: string, problem: string | null): void {
  if (problem !== null) throw new RangeError(`${what} ${problem}`);
}

/** A boot entry as the scripts need it. Sources are http(s) URLs or file names in the entry's directory. */
export interface ScriptEntry {
  readonly name: string;
  readonly kernel: string;
  readonly initrds: readonly string[];
  readonly cmdline: string;
}

/** Why this entry cannot be rendered into a script, or null when it can. */
export function entryProblem(entry: ScriptEntry): string | null {
  if (!SAFE_NAME.test(entry.name)) return `name ${JSON.stringify(entry.name)} is not a valid entry name`;
  const sources = [entry.kernel, ...entry.initrds];
  for (const s of sources) {
    if (/^https?:\/\//i.test(s)) {
      const p = ipxeUrlProblem(s);
      if (p) return `source ${JSON.stringify(s)} ${p}`;
    } else if (!SAFE_FILE.test(s)) {
      return `source ${JSON.stringify(s)} is neither an http(s) URL nor a valid file name`;
    }
  }
  const p = ipxeArgsProblem(entry.cmdline);
  if (p) return `command line ${p}`;
  return null;
}

/** The URL iPXE fetches a source of an entry from. */
export function sourceUrl(baseUrl: string, entryName: string, source: string): string {
  return /^https?:\/\//i.test(source) ? source : `${baseUrl}/boot/entries/${entryName}/${source}`;
}

/** Image names for the initrds: the file name when safe and unique, else initrdN. */
function initrdNames(initrds: readonly string[]): string[] {
  const seen = new Set<string>();
  return initrds.map((src, i) => {
    const base = (src.split('?')[0] ?? '').split('/').pop() ?? '';
    let name = SAFE_FILE.test(base) && !seen.has(base) ? base : `initrd${i}`;
    if (seen.has(name)) name = `initrd${i}-${seen.size}`;
    seen.add(name);
    return name;
  });
}

export type Platform = 'pcbios' | 'efi';

/**
 * Script lines that boot `entry`, jumping to `onFail` when a step fails.
 * With initrds on anything but BIOS, `initrd=NAME` is added to the kernel
 * command line for each one, as iPXE advises for EFI-stub kernels (a kernel
 * that finds iPXE's LoadFile2 initrd uses that and ignores these words).
 */
export function entryBootLines(baseUrl: string, entry: ScriptEntry, platform: Platform | null, onFail: string): string[] {
  const problem = entryProblem(entry);
  assertSafe(`Boot entry '${entry.name}':`, problem);
  assertSafe(`Base URL ${JSON.stringify(baseUrl)}`, ipxeUrlProblem(baseUrl));
  const names = initrdNames(entry.initrds);
  const args: string[] = [];
  if (platform !== 'pcbios') for (const n of names) args.push(`initrd=${n}`);
  const cmdline = entry.cmdline.split(' ').filter((w) => w !== '');
  args.push(...cmdline);
  const lines = [`kernel ${sourceUrl(baseUrl, entry.name, entry.kernel)}${args.length ? ' ' + args.join(' ') : ''} || goto ${onFail}`];
  entry.initrds.forEach((src, i) => {
    lines.push(`initrd --name ${names[i]} ${sourceUrl(baseUrl, entry.name, src)} || goto ${onFail}`);
  });
  lines.push(`boot || goto ${onFail}`);
  return lines;
}

/**
 * Boot from the local disk: on BIOS, `sanboot --no-describe --drive 0x80`
 * (the first hard disk, as FOG and the iPXE docs do); when that fails, and
 * always on EFI, `exit` hands control back to the firmware, which tries the
 * next boot option. Decided at run time from ${platform}, so it holds even if
 * the decision request did not say which platform it came from.
 */
function localBootLines(): string[] {
  return ['echo Fleetboot: booting from the local disk', 'iseq ${platform} pcbios && sanboot --no-describe --drive 0x80 ||', 'exit'];
}

/**
 * The entry script served at /boot.ipxe (what the proxyDHCP hands to iPXE):
 * make sure there is an address (iPXE sometimes misses the proxyDHCP reply
 * on its own DHCP, so `dhcp` is retried a few times), then chain to the
 * per-machine decision. Values iPXE puts into the URL are URI-encoded
 * (`:uristring`); the MAC is hex with hyphens and the UUID hex with hyphens.
 */
export function chainScript(baseUrl: string, opts: { dhcpAttempts?: number; via?: string } = {}): string {
  assertSafe(`Base URL ${JSON.stringify(baseUrl)}`, ipxeUrlProblem(baseUrl));
  if (opts.via !== undefined && !SAFE_NAME.test(opts.via)) throw new RangeError(`Node name ${JSON.stringify(opts.via)} is not a valid node name`);
  const attempts = opts.dhcpAttempts ?? 3;
  const decide = `${baseUrl}/boot/decide?${opts.via !== undefined ? `via=${opts.via}&` : ''}${DECIDE_QUERY}`;
  return [
    '#!ipxe',
    '# Fleetboot entry script: get an address, then ask the server what this machine boots.',
    'set fb-try:int32 0',
    ':fb_net',
    'isset ${ip} && goto fb_chain ||',
    'inc fb-try',
    `iseq \${fb-try} ${attempts + 1} && goto fb_nonet ||`,
    `echo Fleetboot: no IPv4 address, DHCP attempt \${fb-try} of ${attempts}`,
    'dhcp && goto fb_chain ||',
    'sleep 2',
    'goto fb_net',
    ':fb_nonet',
    `echo Fleetboot: no IPv4 address after ${attempts} DHCP attempts`,
    'sleep 5',
    'exit 1',
    ':fb_chain',
    `chain --replace --autofree ${decide} || goto fb_fail`,
    ':fb_fail',
    `echo Fleetboot: cannot get the boot decision from ${baseUrl}/boot/decide`,
    'sleep 5',
    'exit 1',
    '',
  ].join('\n');
}

/** The script for a machine whose assigned entry it boots; falls back to the local disk if that fails. */
export function entryScript(opts: { baseUrl: string; mac: string; hostName: string | null; entry: ScriptEntry; platform: Platform | null }): string {
  const who = ipxeText(opts.hostName ? `${opts.mac} (${opts.hostName})` : opts.mac);
  return [
    '#!ipxe',
    `# Fleetboot boot decision: ${who} boots entry ${ipxeText(opts.entry.name)}`,
    `echo Fleetboot: ${who} boots entry ${ipxeText(opts.entry.name)}`,
    ...entryBootLines(opts.baseUrl, opts.entry, opts.platform, 'failed'),
    ':failed',
    `echo Fleetboot: booting entry ${ipxeText(opts.entry.name)} failed, trying the local disk in 5 seconds`,
    'sleep 5',
    ...localBootLines(),
    '',
  ].join('\n');
}

/**
 * The menu for an unknown or unassigned machine: "Boot from local disk" is
 * the default, chosen when the timeout expires; the boot entries (those that
 * render safely) can be picked at the console. A timeout of 0 skips the menu
 * and boots the local disk at once (`choose --timeout 0` would wait forever).
 */
export function menuScript(opts: {
  baseUrl: string;
  mac: string;
  title: string;
  entries: readonly ScriptEntry[];
  timeoutSeconds: number;
  platform: Platform | null;
  maxEntries?: number;
  /** Extra items under "Tools:" that chain to a URL (imaging: register, inventory). */
  tools?: readonly MenuTool[];
}): string {
  const title = ipxeText(opts.title);
  if (opts.timeoutSeconds <= 0) {
    return ['#!ipxe', `# Fleetboot: ${title}`, `echo Fleetboot: ${title}`, ...localBootLines(), ''].join('\n');
  }
  const entries = opts.entries.filter((e) => entryProblem(e) === null).slice(0, opts.maxEntries ?? 100);
  const lines = [
    '#!ipxe',
    `# Fleetboot: ${title}`,
    ':menu',
    `menu Fleetboot: ${title}`,
    'item local Boot from local disk',
  ];
  if (entries.length > 0) {
    lines.push('item --gap Boot entries:');
    entries.forEach((e, i) => lines.push(`item entry${i} ${ipxeText(e.name)}`));
  }
  const tools = (opts.tools ?? []).filter((t) => TOOL_ID.test(t.id) && ipxeUrlProblem(t.url) === null);
  lines.push('item --gap Tools:');
  for (const t of tools) lines.push(`item ${t.id} ${ipxeText(t.label)}`);
  lines.push(
    'item shell iPXE shell',
    `choose --timeout ${Math.round(opts.timeoutSeconds * 1000)} --default local target || goto local`,
    'goto ${target}',
  );
  entries.forEach((e, i) => {
    lines.push(`:entry${i}`, `echo Fleetboot: booting entry ${ipxeText(e.name)}`, ...entryBootLines(opts.baseUrl, e, opts.platform, 'failed'));
  });
  for (const t of tools) {
    lines.push(`:${t.id}`, `chain --replace --autofree ${t.url} || goto failed`);
  }
  lines.push(
    ':shell',
    'echo Type exit to return to the menu',
    'shell',
    'goto menu',
    ':failed',
    'echo Fleetboot: boot failed, trying the local disk in 5 seconds',
    'sleep 5',
    ':local',
    ...localBootLines(),
    '',
  );
  return lines.join('\n');
}

/** A menu item that chains to a URL (the server answers with the next script). */
export interface MenuTool {
  /** Label in the script: lower case letters, digits and "-". */
  id: string;
  label: string;
  url: string;
}

const TOOL_ID = /^[a-z][a-z0-9-]{0,31}$/;
const TOKEN_RE = /^[0-9a-f]{16,128}$/;
const IPV4_RE = new RegExp(IPV4_PATTERN);

/**
 * The boot environment for task `taskId`: Fleetboot's kernel and initramfs
 * with the server URL, the task and its one-time token on the command line
 * (src/imaging/protocol.ts CMDLINE). BOOTIF tells the environment which NIC
 * booted (iPXE expands ${net0/mac:hexhyp} itself). On a failure to load,
 * the machine returns to the firmware (never to a half-written disk's OS
 * on purpose: the task stays active and the next PXE boot tries again).
 */
export function bootEnvScript(opts: { baseUrl: string; mac: string; hostName: string | null; taskId: number; taskType: string; token: string; kernelArgs: string; clientIp?: string }): string {
  assertSafe(`Base URL ${JSON.stringify(opts.baseUrl)}`, ipxeUrlProblem(opts.baseUrl));
  if (!Number.isSafeInteger(opts.taskId) || opts.taskId < 1) throw new RangeError(`Task id ${opts.taskId} is not a positive integer`);
  if (!TOKEN_RE.test(opts.token)) throw new RangeError('The task token must be 16-128 lower-case hex digits');
  assertSafe('Boot environment kernel arguments', ipxeArgsProblem(opts.kernelArgs));
  if (opts.clientIp !== undefined && !IPV4_RE.test(opts.clientIp)) throw new RangeError(`Client address ${JSON.stringify(opts.clientIp)} is not a dotted-quad IPv4 address`);
  const who = ipxeText(opts.hostName ? `${opts.mac} (${opts.hostName})` : opts.mac);
  const what = ipxeText(`task ${opts.taskId} (${opts.taskType})`);
  const args = [
    'initrd=initrd.img',
    `fleetboot.url=${opts.baseUrl}`,
    `fleetboot.task=${opts.taskId}`,
    `fleetboot.token=${opts.token}`,
    // The token is bound to this address: the environment asks its DHCP server for it again.
    ...(opts.clientIp !== undefined ? [`fleetboot.ip=${opts.clientIp}`] : []),
    'BOOTIF=01-${net0/mac:hexhyp}',
    'console=tty0',
    'console=ttyS0,115200',
    ...opts.kernelArgs.split(' ').filter((w) => w !== ''),
  ];
  return [
    '#!ipxe',
    `# Fleetboot boot decision: ${who} runs imaging ${what}`,
    `echo Fleetboot: ${who} runs imaging ${what}`,
    `kernel ${opts.baseUrl}/boot/env/vmlinuz ${args.join(' ')} || goto failed`,
    `initrd ${opts.baseUrl}/boot/env/initrd.img || goto failed`,
    'boot || goto failed',
    ':failed',
    'echo Fleetboot: loading the boot environment failed, the task waits for the next network boot',
    'sleep 10',
    'exit 1',
    '',
  ].join('\n');
}

/**
 * Nearest node (issue 15): the machine's subnet is served by node `node`,
 * so this server sends it there, once: to that node's /boot.ipxe marked
 * `via=<this node>`, which is never sent on again (src/http/routes/boot.ts).
 */
export function nodeRedirectScript(opts: { node: string; baseUrl: string; via: string }): string {
  assertSafe(`Base URL of node ${JSON.stringify(opts.node)}`, ipxeUrlProblem(opts.baseUrl));
  if (!SAFE_NAME.test(opts.node) || !SAFE_NAME.test(opts.via)) throw new RangeError(`Node names ${JSON.stringify(opts.node)} and ${JSON.stringify(opts.via)} must be valid node names`);
  const url = `${opts.baseUrl}/boot.ipxe?via=${opts.via}`;
  return [
    '#!ipxe',
    `# Fleetboot: this machine's subnet is served by node ${opts.node}`,
    `echo Fleetboot: booting from node ${opts.node} (${ipxeText(opts.baseUrl)})`,
    `chain --replace --autofree ${url} || goto fb_fail`,
    ':fb_fail',
    `echo Fleetboot: cannot reach node ${opts.node} at ${ipxeText(opts.baseUrl)}`,
    'sleep 5',
    'exit 1',
    '',
  ].join('\n');
}

/** A script that prints a message and returns to the firmware (bad request, server error). */
/** Say why, wait, then ask the server again (the machine stays in iPXE instead of falling through to its disk). */
export function retryScript(baseUrl: string, message: string, seconds: number): string {
  assertSafe(`Base URL ${JSON.stringify(baseUrl)}`, ipxeUrlProblem(baseUrl));
  const wait = Math.max(1, Math.min(600, Math.floor(seconds)));
  return ['#!ipxe', `echo Fleetboot: ${ipxeText(message)}`, `echo Fleetboot: asking again in ${wait} s`, `sleep ${wait}`, `chain --replace --autofree ${baseUrl}/boot.ipxe`, ''].join('\n');
}

export function messageScript(message: string, opts: { pauseSeconds?: number } = {}): string {
  return ['#!ipxe', `echo Fleetboot: ${ipxeText(message)}`, `sleep ${opts.pauseSeconds ?? 5}`, 'exit 1', ''].join('\n');
}
