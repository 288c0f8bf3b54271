/**
 * A throwaway self-signed TLS certificate for loopback tests, the echo server's `--http2` and the
 * HTTP/2 benchmark: ECDSA P-256, valid two days, for localhost, 127.0.0.1 and ::1.
 *
 * Made by the `openssl` binary. Node can make the key pair but has no X.509 writer; the choices were
 * that binary, an npm package (`selfsigned`: node-forge underneath, ~1.6 MB, pure-JS RSA keys that
 * take a second or more), or an ASN.1 writer of our own. `openssl` ships with Debian wherever
 * `ca-certificates` is installed (it depends on it), so CI and this machine have it; it makes the
 * certificate in ~20 ms and adds nothing to node_modules. A missing binary is a clear error.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSigned {
  /** PEM certificate and private key, for `tls`/`http2.createSecureServer({ cert, key })`. */
  cert: string;
  key: string;
  /** SHA-256 of the certificate, "AB:CD:..." (what browsers show). */
  fingerprint256: string;
  /** base64 SHA-256 of the SubjectPublicKeyInfo: Chromium's `--ignore-certificate-errors-spki-list`. */
  spkiHash: string;
}

export function makeSelfSigned(commonName = 'localhost'): SelfSigned {
  const dir = mkdtempSync(join(tmpdir(), 'wschan-cert-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    try {
      execFileSync(
        'openssl',
        [
          'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
          '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', `/CN=${commonName}`,
          '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === 'ENOENT') throw new Error('making a self-signed certificate needs the openssl binary (Debian: apt-get install openssl)');
      throw new Error(`openssl failed: ${e.stderr?.toString() ?? e.message}`);
    }
    const cert = readFileSync(certPath, 'utf8');
    const key = readFileSync(keyPath, 'utf8');
    const x509 = new X509Certificate(cert);
    const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
    return { cert, key, fingerprint256: x509.fingerprint256, spkiHash: createHash('sha256').update(spki).digest('base64') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
