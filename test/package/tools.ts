/** Helpers of the package tests: run a command with a clean environment, make a scratch folder. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The repository's own TypeScript compiler (the scratch apps have none). */
export const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * The environment of a child: `npm test` sets npm_* variables (the running script, its config)
 * that a nested npm would obey; a nested npm must behave as it would for a user.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: options.cwd, env: options.env ?? cleanEnv(), timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') {
          reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`, { cause: err }));
          return;
        }
        resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
      },
    );
  });
}

/** Like `run`, but a non-zero exit throws with the command's output (the failure says what went wrong). */
export async function mustRun(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) throw new Error(`\`${cmd} ${args.join(' ')}\` in ${options.cwd} exited with ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

/** A fresh folder under the OS's temporary directory (outside the repository), and its removal. */
export function scratch(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A tsconfig.json in `dir` for a user's strict program: Node's types from the repository, and
 * declaration files not checked themselves (@types/node alone takes 20+ s here); what a program
 * needs from a package's types its own errors show.
 */
export function writeUserTsconfig(dir: string, options: { module: string; moduleResolution: string; files: string[]; paths?: Record<string, string[]> }): void {
  const compilerOptions = {
    strict: true,
    noEmit: true,
    target: 'ES2022',
    lib: ['ES2023'],
    module: options.module,
    moduleResolution: options.moduleResolution,
    types: ['node'],
    typeRoots: [join(ROOT, 'node_modules/@types')],
    skipLibCheck: true,
    ...(options.paths === undefined ? {} : { paths: options.paths }),
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: options.files }));
}
