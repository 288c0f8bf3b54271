/**
 * Run a Node child process to its exit, with stdout and stderr collected in one string, killed
 * after `timeoutMs` (so no test waits forever on a child that hangs).
 */
import { spawn } from 'node:child_process';

export interface ChildResult {
  code: number | null;
  out: string;
}

export function runNodeChild(args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<ChildResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}
