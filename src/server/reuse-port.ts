/**
 * Whether this Node and platform can bind several listeners to one port (SO_REUSEPORT), which the
 * threaded server (src/scale/) needs: each thread listens on the same port and the kernel spreads
 * connections among them. Node's `net` gained `reusePort` in 22.12 and 23.1; on a platform
 * without it Node throws, and an older Node ignores the option silently (the second listener would
 * then fail with EADDRINUSE, or worse, a test would pass on one thread). So we check first.
 */

/** What is missing for `reusePort`, in words, or undefined when it is there. */
export function reusePortMissing(version: string = process.versions.node, platform: string = process.platform): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const nodeOk = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  // The platforms Node documents for reusePort; we test on Linux only.
  const platformOk = platform === 'linux' || platform === 'freebsd';
  if (nodeOk && platformOk) return undefined;
  const parts: string[] = [];
  if (!nodeOk) parts.push(`Node >= 22.12 or >= 23.1 (this is Node ${version})`);
  if (!platformOk) parts.push(`Linux or FreeBSD (this is ${platform})`);
  return `SO_REUSEPORT support: ${parts.join(' and ')}`;
}
