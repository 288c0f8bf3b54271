import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Run a built script (npm test builds first); collect its output; kill it after `timeoutMs`. */
export function runScript(
  rel: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; until?: (out: string) => boolean } = {},
): Promise<{ code: number | null; out: string; child: ChildProcess }> {
  const file = `${ROOT}dist/${rel}`;
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const finish = (code: number | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code, out, child });
    };
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (options.until?.(out)) finish(null);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => finish(code));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(null);
    }, options.timeoutMs ?? 15_000);
  });
}
