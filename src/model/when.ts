/**
 * Start times of scheduled tasks (`--at TIME`, the API's "at"). Accepted:
 *
 * - `HH:MM`: the next time the clock shows it (today, or tomorrow when that
 *   minute has begun already), in local time;
 * - ISO 8601 date and time, `YYYY-MM-DDTHH:MM[:SS[.mmm]]` (a space may
 *   replace the T), with an offset (`Z`, `+01:00`, `-0500`) or without one:
 *   then local time. A local time that does not exist (the hour skipped by
 *   a daylight-saving change) is refused, not moved.
 *
 * "Local" is the time zone of the process that parses: the CLI resolves
 * TIME on the administrator's machine and sends an absolute time (UTC); the
 * API reads a time without offset in the server's time zone. Pure: `now` is
 * passed in.
 */
import { FleetbootError } from '../lib/errors.js';

export const WHEN_EXPECTED =
  'expected HH:MM (the next such time), or an ISO 8601 date and time such as 2026-12-24T22:00 (local time), 2026-12-24T22:00:00Z or 2026-12-24T22:00+01:00';

const HHMM = /^([01]?[0-9]|2[0-3]):([0-5][0-9])$/;
const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

function invalid(text: string, why = ''): FleetbootError {
  return new FleetbootError('INVALID_INPUT', `Invalid time ${JSON.stringify(text)}${why ? ` (${why})` : ''}: ${WHEN_EXPECTED}`);
}

/** TIME -> the instant it names. Throws FleetbootError('INVALID_INPUT') saying what was expected. */
export function parseWhen(text: string, now: Date): Date {
  const s = text.trim();
  const hm = HHMM.exec(s);
  if (hm) {
    const t = new Date(now.getFullYear(), now.getMonth(), now.getDate(), Number(hm[1]), Number(hm[2]), 0, 0);
    // Not this minute: it has begun already.
    if (t.getTime() <= now.getTime()) t.setDate(t.getDate() + 1);
    return t;
  }
  const m = ISO.exec(s);
  if (!m) throw invalid(text);
  const [y, mo, d, h, mi] = [1, 2, 3, 4, 5].map((i) => Number(m[i]));
  const sec = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0'));
  if (mo === undefined || d === undefined || y === undefined || h === undefined || mi === undefined) throw invalid(text);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) throw invalid(text, 'a field is out of range');
  const offset = m[8];
  if (offset === undefined) {
    const t = new Date(y, mo - 1, d, h, mi, sec, ms);
    if (t.getFullYear() !== y || t.getMonth() !== mo - 1 || t.getDate() !== d) throw invalid(text, 'no such date');
    if (t.getHours() !== h || t.getMinutes() !== mi) throw invalid(text, 'that local time does not exist: a daylight-saving change skips it');
    return t;
  }
  const utc = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
  const check = new Date(utc);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) throw invalid(text, 'no such date');
  let offMin = 0;
  if (offset.toUpperCase() !== 'Z') {
    const om = /^([+-])(\d{2}):?(\d{2})$/.exec(offset);
    if (!om) throw invalid(text);
    const oh = Number(om[2]);
    const omin = Number(om[3]);
    if (oh > 14 || omin > 59) throw invalid(text, 'the offset is out of range');
    offMin = (om[1] === '-' ? -1 : 1) * (oh * 60 + omin);
  }
  return new Date(utc - offMin * 60_000);
}

/** Accepted this far in the past (clock skew between CLI and server, the request's own time). */
export const PAST_GRACE_MS = 5000;
/** At most this far ahead (a typo in the year should not park a task for decades). */
export const MAX_AHEAD_DAYS = 366;

/** Refuse a start time in the past (beyond PAST_GRACE_MS) or more than MAX_AHEAD_DAYS ahead. */
export function checkStartTime(at: Date, now: Date, text: string = at.toISOString()): void {
  if (at.getTime() < now.getTime() - PAST_GRACE_MS) {
    throw new FleetbootError('INVALID_INPUT', `The start time ${JSON.stringify(text)} (${at.toISOString()}) is in the past (now ${now.toISOString()}): expected a time from now on`);
  }
  if (at.getTime() > now.getTime() + MAX_AHEAD_DAYS * 86_400_000) {
    throw new FleetbootError('INVALID_INPUT', `The start time ${JSON.stringify(text)} (${at.toISOString()}) is more than ${MAX_AHEAD_DAYS} days ahead: expected a time within a year`);
  }
}
