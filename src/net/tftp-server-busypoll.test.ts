// The TFTP service's whole unit suite again with busy polling on (the
// configuration's default, tftp.busyPollMicros 50): Node's loop then keeps
// polling between datagrams instead of sleeping, and nothing may be lost or late.
process.env.FLEETBOOT_TEST_TFTP_BUSY_POLL = '50';
await import('./tftp-server.test.js');
