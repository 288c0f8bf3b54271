import type { CodecJob } from '../protocol/deflate-codec.js';

/**
 * Runs the compression jobs of every connection of this thread (large permessage-deflate
 * messages, src/protocol/deflate-codec.ts): ONE slice per turn of the event loop, round robin
 * across jobs, so that however many large messages are in progress, a turn of the loop holds at
 * most one slice (~1-2 ms) of zlib work and every other socket is served in between. (Running
 * every job's slice in the same setImmediate phase would let N large messages block N slices.)
 *
 * Jobs that run on the thread pool (large messages, and every message without zlib handle
 * internals) never enter the queue: they are started at once and bounded by their server's
 * ZlibPool (src/protocol/zlib-pool.ts), which holds them until a slot is free.
 */

interface Entry {
  job: CodecJob<unknown>;
  done: (result: unknown) => void;
}

const queue: Entry[] = [];
let head = 0;
let scheduled = false;
/** Thread-pool jobs started and not yet done. */
let inFlight = 0;
/** Thread-pool jobs started so far (read by tests: proof that a message left the loop). */
let offloads = 0;
/** Turns of the event loop that ran a slice (read by tests: proof that work was split). */
let turns = 0;

/** Slices run so far by this thread (tests count them to see that a message was split). */
export function codecTurns(): number {
  return turns;
}

/** Jobs handed to the thread pool so far by this thread. */
export function codecOffloads(): number {
  return offloads;
}

/** Jobs queued or waiting. */
export function pendingCodecJobs(): number {
  return queue.length - head + inFlight;
}

/** Run `job` to its end, one slice per event-loop turn, and pass its result to `done` (never synchronously). */
export function runCodecJob<T>(job: CodecJob<T>, done: (result: T) => void): void {
  if (job.pooled === true) {
    // Submitted to its pool when it was made; it never ends synchronously (zlib's callbacks
    // don't), so `done` comes from `wake`. (A wait on a broadcast's shared compression counts too.)
    inFlight++;
    offloads++;
    let finished = false;
    const wake = (): void => {
      if (finished || job.step() !== 'done') return;
      finished = true;
      job.wake = undefined;
      inFlight--;
      done(job.result as T);
    };
    job.wake = wake;
    if (job.step() === 'done') process.nextTick(wake);
    return;
  }
  queue.push({ job, done: done as (result: unknown) => void });
  schedule();
}

function schedule(): void {
  if (scheduled || head >= queue.length) return;
  scheduled = true;
  setImmediate(runOne);
}

function runOne(): void {
  scheduled = false;
  if (head >= queue.length) return;
  const e = queue[head++]!;
  if (head > 64 && head * 2 > queue.length) queue.splice(0, head), (head = 0);
  turns++;
  let status: 'done' | 'more' | 'wait';
  try {
    status = e.job.step();
  } catch (err) {
    // A step never throws (errors are results); if one does, the job ends with it.
    status = 'done';
    (e.job as { result: unknown }).result = err;
  }
  if (status === 'more') {
    queue.push(e);
  } else {
    e.done(e.job.result);
  }
  schedule();
}
