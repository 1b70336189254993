/**
 * Pure validators and normalisers for what the store keeps. No I/O; shared by
 * the HTTP layer (input validation) and the boot decision (MAC from iPXE).
 */

/** Boot entry and host names. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const NAME_RE = new RegExp(NAME_PATTERN);
/** NAME_PATTERN as messages say it (node names, node groups, boot entries, hosts). */
export const NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";

/** Files of a boot entry, stored flat in <dataDir>/entries/<name>/. */
export const FILE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$';
const FILE_NAME_RE = new RegExp(FILE_NAME_PATTERN);

/** A dotted-quad IPv4 address, canonical (no leading zeros). */
export const IPV4_PATTERN = '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$';
const IPV4_RE = new RegExp(IPV4_PATTERN);

/**
 * An address a host may have reserved: canonical IPv4, not 0.0.0.0/8,
 * loopback (127/8), multicast/reserved (224 and up).
 */
export function isReservableIPv4(s: string): boolean {
  if (!IPV4_RE.test(s)) return false;
  const first = Number(s.split('.')[0]);
  return first !== 0 && first !== 127 && first < 224;
}

export function isValidName(s: string): boolean {
  return NAME_RE.test(s);
}

export function isValidFileName(s: string): boolean {
  return FILE_NAME_RE.test(s) && s !== '.' && s !== '..';
}

/**
 * A MAC address in any usual spelling (52:54:00:12:34:56, 52-54-00-12-34-56
 * as iPXE's `:hexhyp` gives it, 525400123456, 5254.0012.3456), normalised to
 * lower-case colon form; null when it is not one.
 */
export function normaliseMac(input: string): string | null {
  const s = input.trim();
  let hex: string;
  if (/^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$/.test(s)) hex = s.replace(/[:-]/g, '');
  else if (/^[0-9A-Fa-f]{12}$/.test(s)) hex = s;
  else if (/^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$/.test(s)) hex = s.replace(/\./g, '');
  else return null;
  hex = hex.toLowerCase();
  return (hex.match(/../g) ?? []).join(':');
}

/** A boot source: an http(s) URL, or a file name inside the entry's directory. */
export function isUrlSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}
