/**
 * TFTP option negotiation as a pure function: RFC 2347 (OACK), RFC 2348
 * blksize, RFC 2349 timeout and tsize, RFC 7440 windowsize.
 *
 * Policy for values a client should not have sent (documented choice):
 * an option we cannot accept is left out of the OACK and its default applies
 * (RFC 2347: "the server may ignore any option it does not support"). We never
 * answer ERROR 8 ourselves: a boot ROM that asked for something odd still boots
 * at the defaults, and the client, not the server, decides whether that is
 * acceptable (it may answer the OACK with ERROR 8).
 *   - blksize  < 8, or not a decimal number           -> ignored (512)
 *   - blksize  > the server's max (also > 65464)      -> clamped to the max (RFC 2348 allows a smaller reply)
 *   - windowsize < 1, or not a decimal number         -> ignored (1: lock-step)
 *   - windowsize > the server's max                   -> clamped (RFC 7440 allows a smaller reply)
 *   - timeout outside 1..255 s, or not a number       -> ignored (server default); RFC 2349 forbids changing it
 *   - tsize on RRQ: answered with the real file size (the client sends 0); ignored when the size is unknown
 *   - unknown options and repeated names (after the first) -> ignored
 * When nothing is accepted there is no OACK and the transfer starts with DATA 1.
 */
import type { TftpOption } from './packet.js';

/** RFC 2348 blksize range. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/** RFC 7440 windowsize range. */
export const MAX_WINDOWSIZE = 65535;
/** RFC 2349 timeout range, seconds. */
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 255;
export const DEFAULT_BLKSIZE = 512;

export interface NegotiationLimits {
  /** Largest blksize the server grants (config tftp.maxBlksize; some UEFI firmware fails with big blocks). */
  maxBlksize: number;
  /** Largest windowsize the server grants (config tftp.maxWindowsize). */
  maxWindowsize: number;
}

export interface NegotiationRequest {
  op: 'RRQ' | 'WRQ';
  options: readonly TftpOption[];
  /** Size of the file being read (RRQ), or null when unknown. */
  fileSize: number | null;
}

export interface IgnoredOption {
  name: string;
  value: string;
  reason: string;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** Retransmission timeout the client asked for, in seconds; null = the server's default. */
  timeoutS: number | null;
  /** The tsize sent in the OACK, or null. */
  tsize: number | null;
  /** The OACK's options in request order (names as the client spelled them); empty = send no OACK. */
  oack: TftpOption[];
  /** Options left out, with the reason, for the log. */
  ignored: IgnoredOption[];
}

const DECIMAL = /^[0-9]{1,12}$/;
function parseDecimal(v: string): number | null {
  return DECIMAL.test(v) ? Number(v) : null;
}

function checkLimit(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`'${name}' must be an integer ${min}-${max}: current value is ${v}`);
  }
}

/** Decide the transfer parameters and the OACK for a request. */
export function negotiate(req: NegotiationRequest, limits: NegotiationLimits): Negotiated {
  checkLimit('maxBlksize', limits.maxBlksize, MIN_BLKSIZE, MAX_BLKSIZE);
  checkLimit('maxWindowsize', limits.maxWindowsize, 1, MAX_WINDOWSIZE);
  const out: Negotiated = { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeoutS: null, tsize: null, oack: [], ignored: [] };
  const seen = new Set<string>();
  const ignore = (o: TftpOption, reason: string): void => {
    out.ignored.push({ name: o.name, value: o.value, reason });
  };
  for (const o of req.options) {
    const key = o.name.toLowerCase();
    if (seen.has(key)) {
      ignore(o, 'repeated');
      continue;
    }
    seen.add(key);
    const n = parseDecimal(o.value);
    switch (key) {
      case 'blksize': {
        if (n === null) ignore(o, 'not a decimal number');
        else if (n < MIN_BLKSIZE) ignore(o, `below ${MIN_BLKSIZE}`);
        else {
          out.blksize = Math.min(n, limits.maxBlksize);
          out.oack.push({ name: o.name, value: String(out.blksize) });
        }
        break;
      }
      case 'windowsize': {
        if (n === null) ignore(o, 'not a decimal number');
        else if (n < 1) ignore(o, 'below 1');
        else {
          out.windowsize = Math.min(n, limits.maxWindowsize);
          out.oack.push({ name: o.name, value: String(out.windowsize) });
        }
        break;
      }
      case 'timeout': {
        if (n === null) ignore(o, 'not a decimal number');
        else if (n < MIN_TIMEOUT_S || n > MAX_TIMEOUT_S) ignore(o, `outside ${MIN_TIMEOUT_S}-${MAX_TIMEOUT_S}`);
        else {
          out.timeoutS = n;
          out.oack.push({ name: o.name, value: String(n) });
        }
        break;
      }
      case 'tsize': {
        if (n === null) ignore(o, 'not a decimal number');
        else if (req.op === 'WRQ') {
          out.tsize = n;
          out.oack.push({ name: o.name, value: String(n) });
        } else if (req.fileSize === null) ignore(o, 'file size unknown');
        else {
          out.tsize = req.fileSize;
          out.oack.push({ name: o.name, value: String(req.fileSize) });
        }
        break;
      }
      default:
        ignore(o, 'unknown option');
    }
  }
  return out;
}
