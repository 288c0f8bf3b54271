/** Server options are validated by their TypeBox schema: defaults filled in, bad input named by path. */
import { describe, expect, it } from 'vitest';
import { defaultConnOptions } from '../../src/conn/conn.js';
import { OptionsError, Server } from '../../src/index.js';

function optionsError(fn: () => unknown): OptionsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OptionsError);
    return e as OptionsError;
  }
  throw new Error('expected an OptionsError');
}

describe('server options', () => {
  it('fills in every default', () => {
    const s = new Server();
    expect(s.options).toEqual({
      ...defaultConnOptions,
      handshakeTimeout: 10_000,
      maxHeaderSize: 16 * 1024,
      deflate: false,
      shutdownTimeout: 5_000,
    });
  });

  it('keeps given values and fills in the rest', () => {
    const s = new Server({ maxQueuedBytes: 1000, overflow: 'drop-oldest', path: '/ws' });
    expect(s.options.maxQueuedBytes).toBe(1000);
    expect(s.options.overflow).toBe('drop-oldest');
    expect(s.options.path).toBe('/ws');
    expect(s.options.maxQueuedFrames).toBe(defaultConnOptions.maxQueuedFrames);
  });

  it('does not modify the object it is given', () => {
    const input = { maxQueuedBytes: 1000 };
    new Server(input);
    expect(input).toEqual({ maxQueuedBytes: 1000 });
  });

  it('refuses an unknown key with WS_ERR_INVALID_OPTIONS naming its path', () => {
    const e = optionsError(() => new Server({ maxQueueBytes: 10 } as never));
    expect(e.code).toBe('WS_ERR_INVALID_OPTIONS');
    expect(e.message).toBe('invalid server options: /maxQueueBytes: Unexpected property');
  });

  it('refuses maxQueuedBytes: -1 naming /maxQueuedBytes', () => {
    const e = optionsError(() => new Server({ maxQueuedBytes: -1 }));
    expect(e.code).toBe('WS_ERR_INVALID_OPTIONS');
    expect(e.message).toMatch(/^invalid server options: \/maxQueuedBytes: Expected integer to be greater or equal to 1/);
  });

  it("refuses overflow: 'nope' naming /overflow", () => {
    const e = optionsError(() => new Server({ overflow: 'nope' as never }));
    expect(e.code).toBe('WS_ERR_INVALID_OPTIONS');
    expect(e.message).toBe('invalid server options: /overflow: Expected union value');
  });

  it('refuses a non-integer timeout naming /handshakeTimeout', () => {
    const e = optionsError(() => new Server({ handshakeTimeout: 1.5 }));
    expect(e.message).toMatch(/\/handshakeTimeout: Expected integer/);
  });

  it('refuses a bad nested deflate value naming /deflate/serverMaxWindowBits', () => {
    const e = optionsError(() => new Server({ deflate: { serverMaxWindowBits: 16 } }));
    expect(e.code).toBe('WS_ERR_INVALID_OPTIONS');
    expect(e.message).toBe('invalid server options: /deflate/serverMaxWindowBits: Expected integer to be less or equal to 15');
  });

  it('refuses an unknown deflate key naming /deflate/windowBits', () => {
    const e = optionsError(() => new Server({ deflate: { windowBits: 10 } as never }));
    expect(e.message).toBe('invalid server options: /deflate/windowBits: Unexpected property');
  });

  it('refuses options that are not an object', () => {
    const e = optionsError(() => new Server(42 as never));
    expect(e.code).toBe('WS_ERR_INVALID_OPTIONS');
    expect(e.message).toBe('server options must be an object');
  });

  it('reports every offending path at once', () => {
    const e = optionsError(() => new Server({ maxQueuedBytes: -1, overflow: 'nope' as never }));
    expect(e.message).toContain('/maxQueuedBytes');
    expect(e.message).toContain('/overflow');
  });
});
