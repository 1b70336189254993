/**
 * Every external program Fleetboot runs, with the Debian package that
 * provides it and who needs it. This table is the one list: code spawns a
 * program through `program(name)` (a name not listed here does not compile),
 * scripts/install-deps.sh installs each package in the list its role names,
 * and src/lib/programs.test.ts fails when a spawn bypasses the table or a
 * package is not installed.
 *
 * Roles:
 * - `runtime`: the server, the boot environment build (scripts/*.sh) and the
 *   imaging agent inside the boot environment (whose copies of these tools
 *   come from scripts/build-bootenv.sh's TOOLS and partclone); installed by
 *   `install-deps.sh`.
 * - `test`: unit, interop and lab tests, benchmarks, the lab demo, fixture
 *   capture; installed by `install-deps.sh --with-test`.
 * - `prerequisite`: there before install-deps runs, which needs them (Node 20
 *   and Debian's package tools); install-deps does not install these.
 * - `optional`: used when present (`command -v X && X ...`), never required;
 *   install-deps does not install these.
 *
 * A program used in both places is `runtime`. Packages that are essential on
 * Debian (coreutils, util-linux, bash, ...) are listed anyway: "installed"
 * should not depend on what a particular image happens to carry.
 *
 * Pure data, importable anywhere (the agent bundle includes it): no imports.
 */

export type ProgramRole = 'runtime' | 'test' | 'prerequisite' | 'optional';

export interface ProgramInfo {
  /** The Debian 12 package that installs the program. */
  readonly pkg: string;
  readonly role: ProgramRole;
}

export const PROGRAMS = {
  // --- runtime: the imaging agent (in the boot environment) -----------------
  sfdisk: { pkg: 'fdisk', role: 'runtime' },
  sgdisk: { pkg: 'gdisk', role: 'runtime' },
  blkid: { pkg: 'util-linux', role: 'runtime' },
  wipefs: { pkg: 'util-linux', role: 'runtime' },
  partx: { pkg: 'util-linux', role: 'runtime' },
  blockdev: { pkg: 'util-linux', role: 'runtime' },
  lsblk: { pkg: 'util-linux', role: 'runtime' },
  // a deploy with enrol mounts the deployed Linux root (in the boot environment: busybox's)
  mount: { pkg: 'mount', role: 'runtime' },
  umount: { pkg: 'mount', role: 'runtime' },
  zstd: { pkg: 'zstd', role: 'runtime' },
  // partclone: the manifest's tool names and the aliases Debian installs for them (src/agent/tools.ts)
  'partclone.extfs': { pkg: 'partclone', role: 'runtime' },
  'partclone.ext4': { pkg: 'partclone', role: 'runtime' },
  'partclone.ext3': { pkg: 'partclone', role: 'runtime' },
  'partclone.ext2': { pkg: 'partclone', role: 'runtime' },
  'partclone.fat': { pkg: 'partclone', role: 'runtime' },
  'partclone.vfat': { pkg: 'partclone', role: 'runtime' },
  'partclone.fat32': { pkg: 'partclone', role: 'runtime' },
  'partclone.fat16': { pkg: 'partclone', role: 'runtime' },
  'partclone.fat12': { pkg: 'partclone', role: 'runtime' },
  'partclone.ntfs': { pkg: 'partclone', role: 'runtime' },
  'partclone.xfs': { pkg: 'partclone', role: 'runtime' },
  'partclone.btrfs': { pkg: 'partclone', role: 'runtime' },
  'partclone.dd': { pkg: 'partclone', role: 'runtime' },
  'partclone.imager': { pkg: 'partclone', role: 'runtime' },
  // --- runtime: building the boot environment and the native addon ---------
  bash: { pkg: 'bash', role: 'runtime' },
  sh: { pkg: 'dash', role: 'runtime' },
  busybox: { pkg: 'busybox-static', role: 'runtime' },
  cpio: { pkg: 'cpio', role: 'runtime' },
  gzip: { pkg: 'gzip', role: 'runtime' },
  kmod: { pkg: 'kmod', role: 'runtime' },
  depmod: { pkg: 'kmod', role: 'runtime' },
  modprobe: { pkg: 'kmod', role: 'runtime' },
  modinfo: { pkg: 'kmod', role: 'runtime' },
  ldd: { pkg: 'libc-bin', role: 'runtime' },
  flock: { pkg: 'util-linux', role: 'runtime' },
  find: { pkg: 'findutils', role: 'runtime' },
  strip: { pkg: 'binutils', role: 'runtime' },
  // scripts/build-agent-deb.sh: the endpoint agent's Depends from its node's libraries
  'dpkg-shlibdeps': { pkg: 'dpkg-dev', role: 'runtime' },
  cc: { pkg: 'gcc', role: 'runtime' },
  sha256sum: { pkg: 'coreutils', role: 'runtime' },
  pkill: { pkg: 'procps', role: 'runtime' }, // install-deps stops a stray in.tftpd
  // --- prerequisites: what runs install-deps --------------------------------
  node: { pkg: 'nodejs', role: 'prerequisite' },
  npm: { pkg: 'nodejs', role: 'prerequisite' },
  npx: { pkg: 'nodejs', role: 'prerequisite' },
  'apt-get': { pkg: 'apt', role: 'prerequisite' },
  'apt-cache': { pkg: 'apt', role: 'prerequisite' },
  dpkg: { pkg: 'dpkg', role: 'prerequisite' },
  'dpkg-deb': { pkg: 'dpkg', role: 'prerequisite' },
  'dpkg-query': { pkg: 'dpkg', role: 'prerequisite' },
  // --- optional: used when there ----------------------------------------------
  systemctl: { pkg: 'systemd', role: 'optional' }, // install-deps stops the daemons Debian starts
  // --- test: lab networks ----------------------------------------------------
  ip: { pkg: 'iproute2', role: 'test' },
  tc: { pkg: 'iproute2', role: 'test' },
  ss: { pkg: 'iproute2', role: 'test' }, // test/lab/service.e2e.test.ts: which process bound a port
  // also read by `fleetboot doctor` when it is installed (its firewall check; src/cli/doctor.ts)
  nft: { pkg: 'nftables', role: 'test' },
  sysctl: { pkg: 'procps', role: 'test' },
  ping: { pkg: 'iputils-ping', role: 'test' },
  taskset: { pkg: 'util-linux', role: 'test' },
  findmnt: { pkg: 'util-linux', role: 'test' }, // bench/cluster.ts: the file system a benchmark's data is on
  tcpdump: { pkg: 'tcpdump', role: 'test' },
  'qemu-system-x86_64': { pkg: 'qemu-system-x86', role: 'test' },
  // --- test: DHCP and TFTP peers and clients ---------------------------------
  dnsmasq: { pkg: 'dnsmasq-base', role: 'test' },
  dhclient: { pkg: 'isc-dhcp-client', role: 'test' },
  dhcpcd: { pkg: 'dhcpcd-base', role: 'test' },
  dhcrelay: { pkg: 'isc-dhcp-relay', role: 'test' },
  dhcpd: { pkg: 'isc-dhcp-server', role: 'test' },
  'kea-dhcp4': { pkg: 'kea-dhcp4-server', role: 'test' },
  perfdhcp: { pkg: 'kea-admin', role: 'test' },
  atftp: { pkg: 'atftp', role: 'test' },
  tftp: { pkg: 'tftp-hpa', role: 'test' },
  'in.tftpd': { pkg: 'tftpd-hpa', role: 'test' },
  curl: { pkg: 'curl', role: 'test' },
  openssl: { pkg: 'openssl', role: 'test' }, // src/tls/x509.test.ts: a second parser of our certificates, and their chain check
  nginx: { pkg: 'nginx-light', role: 'test' },
  // --- test: multicast peers (bench/multicast.ts) and the multicast router (test/lab/mrouter.ts)
  'udp-sender': { pkg: 'udpcast', role: 'test' },
  'udp-receiver': { pkg: 'udpcast', role: 'test' },
  uftp: { pkg: 'uftp', role: 'test' },
  uftpd: { pkg: 'uftp', role: 'test' },
  smcrouted: { pkg: 'smcroute', role: 'test' },
  smcroutectl: { pkg: 'smcroute', role: 'test' },
  // --- test: the console's browser tests (test/console/*.browser.test.ts, playwright-core) ---
  chromium: { pkg: 'chromium', role: 'test' },
  // --- test: the endpoint agent's Debian package (test/agent-deb.test.ts) -----
  'systemd-analyze': { pkg: 'systemd', role: 'test' },
  lintian: { pkg: 'lintian', role: 'test' },
  // src/store/test-postgres.ts: the tests' own PostgreSQL, run as the postgres user (by full path under runuser)
  runuser: { pkg: 'util-linux', role: 'test' },
  id: { pkg: 'coreutils', role: 'test' },
  postgres: { pkg: 'postgresql-15', role: 'test' },
  initdb: { pkg: 'postgresql-15', role: 'test' },
  psql: { pkg: 'postgresql-client-15', role: 'test' },
  strace: { pkg: 'strace', role: 'test' }, // test/service-syscalls.test.ts: the server's system calls against the unit's filter
  setpriv: { pkg: 'util-linux', role: 'test' }, // test/lab/service.e2e.test.ts: the server as an unprivileged user with the unit's capabilities
  setsid: { pkg: 'util-linux', role: 'test' }, // src/endpoint-agent/kill-tree.test.ts: a child in a session of its own
  // --- test: disks and files -------------------------------------------------
  losetup: { pkg: 'mount', role: 'test' },
  blkdiscard: { pkg: 'util-linux', role: 'test' },
  'mkfs.ext4': { pkg: 'e2fsprogs', role: 'test' },
  e2fsck: { pkg: 'e2fsprogs', role: 'test' },
  'mkfs.vfat': { pkg: 'dosfstools', role: 'test' },
  // --- test: the Debian image of the endpoint agent's end-to-end test (scripts/build-debian-image.sh)
  debootstrap: { pkg: 'debootstrap', role: 'test' },
  extlinux: { pkg: 'extlinux', role: 'test' },
  chroot: { pkg: 'coreutils', role: 'test' },
  tar: { pkg: 'tar', role: 'test' },
  mcopy: { pkg: 'mtools', role: 'test' },
  cat: { pkg: 'coreutils', role: 'test' },
  dd: { pkg: 'coreutils', role: 'test' },
  env: { pkg: 'coreutils', role: 'test' },
  mkdir: { pkg: 'coreutils', role: 'test' },
  mkfifo: { pkg: 'coreutils', role: 'test' },
  nproc: { pkg: 'coreutils', role: 'test' },
  sleep: { pkg: 'coreutils', role: 'test' },
  sync: { pkg: 'coreutils', role: 'test' },
  seq: { pkg: 'coreutils', role: 'test' },
  timeout: { pkg: 'coreutils', role: 'test' },
  truncate: { pkg: 'coreutils', role: 'test' },
} as const satisfies Record<string, ProgramInfo>;

export type ProgramName = keyof typeof PROGRAMS;

/** A command line whose first word is a program from the table. */
export type Argv = [ProgramName, ...string[]];

/**
 * Packages install-deps installs for their files rather than a program we
 * run (firmware, boot binaries, headers), so that every package it installs
 * is explained here.
 */
export const FILE_PACKAGES = {
  ipxe: { role: 'runtime', files: 'the iPXE binaries served over TFTP' },
  'libc6-dev': { role: 'runtime', files: 'C headers for native/fastudp.c' },
  'ipxe-qemu': { role: 'test', files: "QEMU's iPXE option ROMs (pxe-e1000.rom, efi-e1000.rom)" },
  ovmf: { role: 'test', files: 'UEFI firmware for QEMU guests' },
  'syslinux-common': { role: 'test', files: "syslinux's mbr.bin, the MBR boot code of the endpoint agent test's Debian image" },
  seabios: { role: 'test', files: 'BIOS firmware for QEMU guests' },
  psmisc: { role: 'test', files: 'fuser and killall, for a person cleaning up after a failed lab run (no code runs them)' },
  'fonts-dejavu-core': { role: 'test', files: "a font for the browser tests' screenshots (Chromium renders boxes without one)" },
} as const satisfies Record<string, { role: 'runtime' | 'test'; files: string }>;

export function isProgramName(name: string): name is ProgramName {
  return Object.prototype.hasOwnProperty.call(PROGRAMS, name);
}

/**
 * The command to spawn for a program. `node` is the Node that runs us
 * (process.execPath), so a child runs the same version; everything else is
 * looked up in PATH by name.
 */
export function program(name: ProgramName): string {
  if (!isProgramName(name)) throw new TypeError(`program(): '${String(name)}' is not in src/lib/programs.ts`);
  return name === 'node' ? process.execPath : name;
}

/**
 * A command line with its program resolved, for a wrapper that runs it
 * (`ip netns exec NS`, `taskset -c N`, `timeout S`, `env -C DIR`).
 */
export function resolveArgv(argv: Argv): string[] {
  const [name, ...rest] = argv;
  return [program(name), ...rest];
}
