/**
 * The one error the DHCP codec throws for bad input. Anything else escaping
 * decode() is a bug: the fuzz test (packet.fuzz.test.ts) holds us to that.
 */
export class DhcpDecodeError extends Error {
  /** Byte offset in the input where the problem was found. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = 'DhcpDecodeError';
    this.offset = offset;
  }
}
