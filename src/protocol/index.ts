/** The sans-I/O protocol core: bytes in, events out. No sockets, no timers. */
export * from './constants.js';
export * from './errors.js';
export * from './mask.js';
export * from './utf8.js';
export * from './close.js';
export * from './frame-parser.js';
export * from './frame-encoder.js';
export * from './message-assembler.js';
