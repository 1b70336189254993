/**
 * The client's address as the boot-time endpoints compare it: an IPv4
 * client reaching a dual-stack socket shows as ::ffff:a.b.c.d, and a token
 * handed to one spelling must match the other.
 */
export function clientAddress(ip: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return m?.[1] ?? ip;
}
