/** DHCP codec: packets, options with typed readers, PXE vendor options. Pure, no I/O. */
export * from './errors.js';
export * from './packet.js';
export * from './options.js';
export * from './pxe.js';
export { describePacket, describeOption } from './describe.js';
