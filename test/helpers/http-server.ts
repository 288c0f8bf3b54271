/** Helpers for tests that run node:http / node:https servers of their own. */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';

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
 * A self-signed certificate for localhost and 127.0.0.1, made with openssl in a temporary folder
 * that is removed after the file's tests; `skip` says why when openssl could not make one.
 */
export function selfSignedCert(): SelfSignedCert {
  const dir = mkdtempSync(join(tmpdir(), 'wschan-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', keyFile, '-out', certFile],
      { stdio: 'pipe' },
    );
  } catch (e) {
    const skip = `openssl could not make a self-signed certificate: ${e instanceof Error ? e.message : String(e)}`;
    console.warn(`skipping the node:https tests: ${skip}`);
    return { skip };
  }
  return { keyFile, certFile, key: readFileSync(keyFile), cert: readFileSync(certFile) };
}
