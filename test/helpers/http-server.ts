/** Helpers for tests that run node:http / node:https servers of their own. */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { makeSelfSigned, type SelfSigned } from '../../stress-tests/self-signed.js';

export type Cleanup = () => Promise<void> | void;

/** A list of cleanups that run after each test of the file, the last pushed first. */
export function cleanupsAfterEach(): Cleanup[] {
  const cleanups: Cleanup[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}

/** Listen on 127.0.0.1, a free port; the server (and its connections) end with the cleanups. */
export async function listenHttp(server: HttpServer, cleanups: Cleanup[]): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

export type SelfSignedCert = { keyFile: string; certFile: string; key: Buffer; cert: Buffer; skip?: undefined } | { skip: string };

/**
 * A self-signed certificate for localhost and 127.0.0.1 (stress-tests/self-signed.ts, made with
 * openssl), written to a temporary folder that is removed after the file's tests; `skip` says why
 * when openssl could not make one.
 */
export function selfSignedCert(): SelfSignedCert {
  let made: SelfSigned;
  try {
    made = makeSelfSigned();
  } catch (e) {
    const skip = `openssl could not make a self-signed certificate: ${e instanceof Error ? e.message : String(e)}`;
    console.warn(`skipping the node:https tests: ${skip}`);
    return { skip };
  }
  const dir = mkdtempSync(join(tmpdir(), 'wschan-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  writeFileSync(keyFile, made.key);
  writeFileSync(certFile, made.cert);
  return { keyFile, certFile, key: Buffer.from(made.key), cert: Buffer.from(made.cert) };
}
