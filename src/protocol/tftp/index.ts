/** TFTP codec and option negotiation: pure, no I/O. */
export * from './packet.js';
export * from './options.js';
