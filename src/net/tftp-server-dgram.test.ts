// The TFTP service's whole unit suite again, on the node:dgram backend (the
// fallback when the native addon is not built): both backends must behave the same.
process.env.FLEETBOOT_UDP = 'dgram';
await import('./tftp-server.test.js');
