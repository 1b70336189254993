/**
 * QEMU guests for lab tests: a PC that network-boots on a tap device of a
 * lab's bridge, with one of three firmware/PXE stacks:
 *
 *   bios-ipxe   SeaBIOS + QEMU's iPXE option ROM (pxe-e1000.rom), legacy BIOS PXE
 *   ovmf-pxe    OVMF (UEFI, q35) + virtio-net with no option ROM: edk2's own PXE stack
 *   ovmf-ipxe   OVMF (UEFI, q35) + e1000 with iPXE's EFI ROM (efi-e1000.rom)
 *   ovmf-sb     OVMF with Secure Boot on and Microsoft's keys enrolled (OVMF_CODE_4M.ms.fd and a
 *               copy of OVMF_VARS_4M.ms.fd; q35 with SMM) + virtio-net with no option ROM: edk2's PXE
 *
 *   const lab = await Lab.create({ subnet: '10.213.40' });
 *   const g = await QemuGuest.start(lab, { variant: 'bios-ipxe', mac: '52:54:00:12:34:56', workDir });
 *   await g.waitForSerial(/FBTEST-CALLBACK-OK/, 120_000);
 *   await g.stop();        // also killed by lab.destroy()
 *
 * The console goes to `serialLog` (COM1): OVMF and the Linux kernel
 * (console=ttyS0) print there, SeaBIOS + iPXE do not (iPXE only draws on the
 * VGA screen, which `-display none` hides), so watch the server's logs for
 * those. SeaBIOS's own debug output (port 0x402) goes to `debugLog`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import { program, type ProgramName } from '../../src/lib/programs.js';
import type { Lab } from './lab.js';

export type QemuVariant = 'bios-ipxe' | 'ovmf-pxe' | 'ovmf-ipxe' | 'ovmf-sb';
export const QEMU_VARIANTS: readonly QemuVariant[] = ['bios-ipxe', 'ovmf-pxe', 'ovmf-ipxe', 'ovmf-sb'];
export type Accel = 'kvm' | 'tcg';

export const QEMU_BIN: ProgramName = 'qemu-system-x86_64';
/** Debian's paths (packages ipxe-qemu, ovmf, seabios). */
export const FIRMWARE = {
  pxeE1000Rom: '/usr/lib/ipxe/qemu/pxe-e1000.rom',
  efiE1000Rom: '/usr/lib/ipxe/qemu/efi-e1000.rom',
  ovmfCode: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  ovmfVars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
  /** Secure Boot on, Microsoft's 2011 CAs in db (they trust Debian's shim); needs SMM. */
  ovmfCodeMs: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd',
  ovmfVarsMs: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
  seabios: '/usr/share/seabios/bios-256k.bin',
} as const;

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Where built test artefacts are cached (it ignores itself with its own .gitignore). */
export const CACHE_DIR = process.env.FBTEST_CACHE ?? join(REPO, 'test', '.cache');

/** What the local-disk boot sector prints on COM1. */
export const LOCAL_DISK_MARKER = 'LOCAL-DISK-BOOTED';
/** What the test initrd prints on the console after a successful callback. */
export const INITRD_OK_MARKER = 'FBTEST-CALLBACK-OK';
export const INITRD_FAIL_MARKER = 'FBTEST-CALLBACK-FAILED';

function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** What is missing to run these variants (empty when all is there), as human-readable items. */
export function missingQemuPrerequisites(variants: readonly QemuVariant[] = QEMU_VARIANTS): string[] {
  const missing: string[] = [];
  if (!onPath(QEMU_BIN)) missing.push(`${QEMU_BIN} (Debian package qemu-system-x86)`);
  const need = new Map<string, string>([[FIRMWARE.seabios, 'seabios']]);
  if (variants.includes('bios-ipxe')) need.set(FIRMWARE.pxeE1000Rom, 'ipxe-qemu');
  if (variants.includes('ovmf-ipxe')) need.set(FIRMWARE.efiE1000Rom, 'ipxe-qemu');
  if (variants.some((v) => v.startsWith('ovmf'))) {
    need.set(FIRMWARE.ovmfCode, 'ovmf');
    need.set(FIRMWARE.ovmfVars, 'ovmf');
  }
  if (variants.includes('ovmf-sb')) {
    need.set(FIRMWARE.ovmfCodeMs, 'ovmf');
    need.set(FIRMWARE.ovmfVarsMs, 'ovmf');
  }
  for (const [file, pkg] of need) if (!existsSync(file)) missing.push(`${file} (Debian package ${pkg})`);
  return missing;
}

/**
 * The test kernel and initrd (test/lab/bootenv/build.sh): built from Debian
 * packages on first use, then taken from the cache.
 */
export async function ensureBootEnv(): Promise<{ kernel: string; initrd: string }> {
  const script = join(REPO, 'test', 'lab', 'bootenv', 'build.sh');
  const out = await new Promise<string>((res, rej) => {
    execFile(program('bash'), [script], { env: { ...process.env, FBTEST_CACHE: CACHE_DIR }, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${script} failed: ${stderr.trim() || err.message}`));
      else res(stdout);
    });
  });
  const [kernel, initrd] = out.trim().split('\n');
  if (!kernel || !initrd || !existsSync(kernel) || !existsSync(initrd)) throw new Error(`${script} printed no kernel/initrd paths: ${out}`);
  return { kernel, initrd };
}

/**
 * Fleetboot's own boot environment (scripts/build-bootenv.sh, the real
 * imaging agent) in CACHE_DIR/fleetboot-bootenv: built on first use, then
 * taken from the cache (the script rebuilds only when an input changed).
 * Returns its directory.
 */
export async function ensureFleetbootBootEnv(out: string = join(CACHE_DIR, 'fleetboot-bootenv')): Promise<string> {
  await new Promise<void>((res, rej) => {
    execFile(program('bash'), [join(REPO, 'scripts/build-bootenv.sh'), '--out', out], { cwd: REPO, maxBuffer: 64 * 1024 * 1024 }, (err, _o, stderr) => {
      if (err) rej(new Error(`scripts/build-bootenv.sh failed: ${stderr.slice(-3000)}`));
      else res();
    });
  });
  return out;
}

/**
 * A 1 MiB raw disk whose MBR boot sector prints LOCAL_DISK_MARKER on COM1
 * and halts: what "boot from local disk" reaches in the tests.
 *
 *   org 0x7c00                ; 16-bit real mode, loaded by the BIOS at 0000:7C00
 *   00  FA          cli
 *   01  FC          cld
 *   02  31 C0       xor  ax, ax
 *   04  8E D8       mov  ds, ax
 *   06  BE 17 7C    mov  si, msg          ; 0x7c00 + 0x17
 *   09  BA F8 03    mov  dx, 0x3f8        ; COM1 transmit register
 *   0C  AC      .l: lodsb
 *   0D  84 C0       test al, al
 *   0F  74 03       jz   .h               ; -> 0x14
 *   11  EE          out  dx, al           ; QEMU's UART takes bytes without set-up
 *   12  EB F8       jmp  .l               ; -> 0x0C
 *   14  F4      .h: hlt
 *   15  EB FD       jmp  .h               ; -> 0x14
 *   17  msg: "LOCAL-DISK-BOOTED\r\n", 0
 *   1FE 55 AA                             ; boot signature
 */
export function writeLocalBootDisk(file: string): void {
  const code = [0xfa, 0xfc, 0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x17, 0x7c, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xf4, 0xeb, 0xfd];
  const disk = Buffer.alloc(1024 * 1024);
  Buffer.from(code).copy(disk, 0);
  disk.write(`${LOCAL_DISK_MARKER}\r\n\0`, code.length, 'latin1');
  disk[510] = 0x55;
  disk[511] = 0xaa;
  writeFileSync(file, disk);
}

let accelProbe: Promise<Accel> | null = null;

/**
 * KVM when it really runs a guest here, else TCG. /dev/kvm can exist and
 * still fail: on this project's CI machine (a Firecracker VM with nested KVM)
 * a real-mode boot sector runs, but a Linux kernel spins forever in the host
 * kernel. So the probe boots the test kernel+initrd under KVM (about 3 s when
 * KVM works) and waits up to 12 s for its /init to print. Probed once per
 * host boot (cached under CACHE_DIR); FBTEST_ACCEL=kvm|tcg overrides.
 */
export function chooseAccel(): Promise<Accel> {
  const forced = process.env.FBTEST_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return Promise.resolve(forced);
  accelProbe ??= probeKvm();
  return accelProbe;
}

async function probeKvm(): Promise<Accel> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return 'tcg';
  }
  let bootId = 'unknown';
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    /* keep unknown */
  }
  const key = `${release()} ${bootId}`;
  const cacheFile = join(CACHE_DIR, 'kvm-probe');
  try {
    const [k, v] = readFileSync(cacheFile, 'utf8').split('\n');
    if (k === key && (v === 'kvm' || v === 'tcg')) return v;
  } catch {
    /* probe below */
  }
  const { kernel, initrd } = await ensureBootEnv();
  const dir = await mkdtemp(join(tmpdir(), 'fbkvm-'));
  let result: Accel = 'tcg';
  try {
    const serial = join(dir, 'serial.log');
    const child = spawn(program(QEMU_BIN), ['-accel', 'kvm', '-m', '256', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', `file:${serial}`,
      '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0 quiet'], { stdio: 'ignore' });
    const deadline = Date.now() + 12_000;
    let exited = false;
    child.on('exit', () => (exited = true));
    while (Date.now() < deadline) {
      await sleep(200);
      if (readText(serial).includes('fbtest: initrd /init started')) {
        result = 'kvm';
        break;
      }
      if (exited) break;
    }
    child.kill('SIGKILL');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  try {
    mkdirSync(CACHE_DIR, { recursive: true });
    writeFileSync(cacheFile, `${key}\n${result}\n`);
  } catch {
    /* not cached */
  }
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `p`, or null after `ms` (the timer is cleared either way, so it never holds the process open). */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

export interface QemuGuestOptions {
  variant: QemuVariant;
  /** The NIC's MAC, e.g. 52:54:00:xx:xx:xx. */
  mac: string;
  /** Where the serial log, SeaBIOS debug log and OVMF variable store go (created if missing). */
  workDir: string;
  /** Label used in file names and messages (default: the variant). */
  name?: string;
  /** A raw disk image, second in the boot order after the NIC (for "boot from local disk"). */
  disk?: string;
  memoryMb?: number;
  /**
   * Boot this kernel directly (QEMU -kernel/-initrd/-append) instead of from
   * the network: checks the boot environment without any PXE server.
   */
  directKernel?: { kernel: string; initrd: string; append: string };
  /** Put the NIC first in the boot order (default true); false boots the disk first. */
  netBoot?: boolean;
  /** Default: chooseAccel(). */
  accel?: Accel;
  /** Virtual CPUs (default 1). */
  cpus?: number;
  /** More QEMU arguments, appended last (e.g. `-smbios type=1,product=...`). */
  extraArgs?: string[];
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The QEMU command line for a guest (exported for the demo and for diagnostics). */
export function qemuArgs(opts: QemuGuestOptions & { tap: string; accel: Accel; serialLog: string; debugLog: string; varsFile: string }): string[] {
  const nic = {
    'bios-ipxe': `e1000,romfile=${FIRMWARE.pxeE1000Rom}`,
    // An empty romfile: no option ROM, so OVMF's VirtioNetDxe + edk2 PXE drive the NIC.
    'ovmf-pxe': 'virtio-net-pci,romfile=',
    'ovmf-ipxe': `e1000,romfile=${FIRMWARE.efiE1000Rom}`,
    'ovmf-sb': 'virtio-net-pci,romfile=',
  }[opts.variant];
  const a = [
    '-name', opts.name ?? opts.variant,
    '-accel', opts.accel,
    '-m', String(opts.memoryMb ?? 512),
    '-smp', String(opts.cpus ?? 1),
    '-nodefaults',
    '-display', 'none',
    '-no-reboot',
    '-serial', `file:${opts.serialLog}`,
    '-netdev', `tap,id=n0,ifname=${opts.tap},script=no,downscript=no`,
    '-device', `${nic},netdev=n0,mac=${opts.mac}${opts.directKernel || opts.netBoot === false ? '' : ',bootindex=1'}`,
  ];
  if (opts.directKernel) a.push('-kernel', opts.directKernel.kernel, '-initrd', opts.directKernel.initrd, '-append', opts.directKernel.append);
  if (opts.variant === 'bios-ipxe') {
    a.push('-machine', 'pc', '-chardev', `file,id=dbg,path=${opts.debugLog}`, '-device', 'isa-debugcon,iobase=0x402,chardev=dbg');
  } else if (opts.variant === 'ovmf-sb') {
    a.push(
      '-machine', 'q35,smm=on',
      '-global', 'driver=cfi.pflash01,property=secure,value=on',
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${FIRMWARE.ovmfCodeMs}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${opts.varsFile}`,
    );
  } else {
    a.push(
      '-machine', 'q35',
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${FIRMWARE.ovmfCode}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${opts.varsFile}`,
    );
  }
  if (opts.disk) a.push('-drive', `file=${opts.disk},format=raw,if=none,id=d0`, '-device', `ide-hd,drive=d0,bootindex=${opts.netBoot === false ? 1 : 2}`);
  if (opts.extraArgs) a.push(...opts.extraArgs);
  return a;
}

export class QemuGuest {
  readonly name: string;
  readonly variant: QemuVariant;
  readonly mac: string;
  readonly tap: string;
  readonly accel: Accel;
  readonly serialLog: string;
  /** SeaBIOS debug output (bios-ipxe only). */
  readonly debugLog: string;
  readonly argv: string[];
  readonly startedAt = Date.now();
  readonly exited: Promise<QemuExit>;
  private readonly child: ChildProcess;
  private stderr = '';
  private exitInfo: QemuExit | null = null;

  private constructor(child: ChildProcess, o: { name: string; variant: QemuVariant; mac: string; tap: string; accel: Accel; serialLog: string; debugLog: string; argv: string[] }) {
    this.child = child;
    this.name = o.name;
    this.variant = o.variant;
    this.mac = o.mac;
    this.tap = o.tap;
    this.accel = o.accel;
    this.serialLog = o.serialLog;
    this.debugLog = o.debugLog;
    this.argv = o.argv;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      if (this.stderr.length < 64 * 1024) this.stderr += d;
    });
    child.stdout?.resume();
    this.exited = new Promise((res) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        res(this.exitInfo);
      });
      child.on('error', (err) => {
        this.stderr += `\nspawn error: ${err.message}`;
        this.exitInfo = { code: null, signal: null };
        res(this.exitInfo);
      });
    });
  }

  /** Start a guest on a new tap of the lab's bridge; QEMU runs inside the bridge namespace. */
  static async start(lab: Lab, opts: QemuGuestOptions): Promise<QemuGuest> {
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(opts.mac)) throw new TypeError(`mac must be lower-case aa:bb:cc:dd:ee:ff: ${opts.mac}`);
    const missing = missingQemuPrerequisites([opts.variant]);
    if (missing.length) throw new Error(`cannot start QEMU, missing: ${missing.join(', ')} (run: bash scripts/install-deps.sh --with-test)`);
    const name = opts.name ?? opts.variant;
    mkdirSync(opts.workDir, { recursive: true });
    const serialLog = join(opts.workDir, `${name}.serial.log`);
    const debugLog = join(opts.workDir, `${name}.seabios.log`);
    const varsFile = join(opts.workDir, `${name}.OVMF_VARS.fd`);
    closeSync(openSync(serialLog, 'w'));
    if (opts.variant !== 'bios-ipxe') copyFileSync(opts.variant === 'ovmf-sb' ? FIRMWARE.ovmfVarsMs : FIRMWARE.ovmfVars, varsFile);
    const accel = opts.accel ?? (await chooseAccel());
    const tap = await lab.addTap();
    const args = qemuArgs({ ...opts, name, tap, accel, serialLog, debugLog, varsFile });
    const child = lab.spawnIn(lab.bridgeNs, [QEMU_BIN, ...args]);
    const g = new QemuGuest(child, { name, variant: opts.variant, mac: opts.mac, tap, accel, serialLog, debugLog, argv: [QEMU_BIN, ...args] });
    // QEMU fails fast on a bad command line; report it here rather than as a timeout later.
    const early = await withTimeout(g.exited, 300);
    if (early) throw new Error(`QEMU exited at once (${early.code ?? early.signal}): ${g.stderr.trim()}\n${g.argv.join(' ')}`);
    return g;
  }

  /** The serial console so far. */
  serial(): string {
    return readText(this.serialLog);
  }

  /** SeaBIOS's debug output so far (bios-ipxe; empty for OVMF). */
  firmwareLog(): string {
    return this.variant === 'bios-ipxe' ? readText(this.debugLog) : '';
  }

  /**
   * Why the firmware gave up on the network boot (it moved on to the next
   * boot option), or null while it has not: SeaBIOS logs the INT 18h return
   * of the NIC's boot ROM and then tries the disk; OVMF logs "failed to
   * load Boot0001" for the NIC's first boot option (bootindex=1).
   */
  networkBootFailed(): string | null {
    if (this.variant === 'bios-ipxe') {
      const m = /Booting from (Hard Disk|Floppy)|No bootable device/.exec(this.firmwareLog());
      return m ? `SeaBIOS: the network boot ROM gave up (then: "${m[0]}")` : null;
    }
    const m = /BdsDxe: failed to load Boot0001 "[^"]*"[^\r\n]*/.exec(this.serial());
    return m ? `OVMF: ${m[0].slice(0, 200)}` : null;
  }

  /** QEMU's own stderr (warnings, errors). */
  qemuStderr(): string {
    return this.stderr;
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  /**
   * Wait until the serial console matches `pattern`. Resolves to the matching
   * text, or null when the guest exits or `timeoutMs` passes first.
   */
  async waitForSerial(pattern: RegExp | string, timeoutMs: number, signal?: AbortSignal): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.serial();
      const m = typeof pattern === 'string' ? (text.includes(pattern) ? pattern : null) : (pattern.exec(text)?.[0] ?? null);
      if (m !== null) return m;
      if (!this.running || Date.now() >= deadline || signal?.aborted) return null;
      await withTimeout(this.exited, 250);
    }
  }

  /** A few lines for a failure message: how long it ran, the exit, the tail of the serial log and stderr. */
  diagnostics(lines = 40): string {
    const tail = (s: string): string => s.split(/\r?\n/).slice(-lines).join('\n');
    const secs = ((Date.now() - this.startedAt) / 1000).toFixed(1);
    const exit = this.exitInfo ? `exited (${this.exitInfo.code ?? this.exitInfo.signal})` : 'still running';
    let s = `--- QEMU ${this.name} (${this.variant}, ${this.accel}, mac ${this.mac}, ${secs} s, ${exit})\n${this.argv.join(' ')}\n`;
    s += `--- serial log ${this.serialLog} (last ${lines} lines)\n${tail(this.serial())}\n`;
    if (this.variant === 'bios-ipxe') s += `--- SeaBIOS debug log (last 15 lines)\n${tail(readText(this.debugLog)).split('\n').slice(-15).join('\n')}\n`;
    if (this.stderr.trim()) s += `--- QEMU stderr\n${tail(this.stderr)}\n`;
    return s;
  }

  /** Kill the guest (SIGKILL) and wait for it to be gone. */
  async stop(): Promise<void> {
    if (this.running) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    await withTimeout(this.exited, 3000);
  }
}
