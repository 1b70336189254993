/** For the lease engine's tests: client messages and reply checks. Not a test file itself. */
import assert from 'node:assert/strict';
import { createPacket, type DhcpOption, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { Opt } from '../protocol/dhcp/options.js';
import type { EngineDecision, EngineReply } from './engine.js';

/** A client message of `type` from MAC 52:54:00:00:00:<n>, with xid `xidBase + n`. */
export function clientMessage(xidBase: number, type: number, n: number, options: DhcpOption[] = [], ciaddr = '0.0.0.0'): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from([0x52, 0x54, 0, 0, 0, n]).copy(chaddr);
  return createPacket({ xid: xidBase + n, chaddr, ciaddr, options: [{ code: Opt.MESSAGE_TYPE, data: Buffer.from([type]) }, ...options] });
}
export const ipb = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
export const opt50 = (s: string): DhcpOption => ({ code: Opt.REQUESTED_IP, data: ipb(s) });
export const opt54 = (s: string): DhcpOption => ({ code: Opt.SERVER_ID, data: ipb(s) });

export function replied(d: EngineDecision): EngineReply {
  assert.ok(!('ignore' in d), `expected a reply, got: ${'ignore' in d ? d.ignore : ''}`);
  return d;
}
