/**
 * DNS host names as a certificate may name its server (subjectAltName
 * dNSName, RFC 5280 4.2.1.6): the config's extra names (`https.names`) and
 * the machine's own host name are checked with this before they go into one.
 */

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * Whether `s` is a host name: dot-separated labels of letters, digits and
 * hyphens (1-63 characters, no hyphen at either end; RFC 1123 2.1), at most
 * 253 characters, no trailing dot, and a last label that is not all digits
 * (so that "10.0.0" is not taken for a name: RFC 3696 2).
 */
export function isDnsName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  const labels = s.split('.');
  return labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1] as string);
}
