import type { CodecJob } from '../protocol/deflate-codec.js';

/**
 * Runs the compression jobs of every connection of this thread (large permessage-deflate
 * messages, src/protocol/deflate-codec.ts): ONE slice per turn of the event loop, round robin
 * across jobs, so that however many large messages are in progress, a turn of the loop holds at
 * most one slice (~1-2 ms) of zlib work and every other socket is served in between. (Running
 * every job's slice in the same setImmediate phase would let N large messages block N slices.)
 *
 * Jobs that run on the thread pool (the fallback without zlib handle internals) wait outside the
 * queue; at most MAX_IN_FLIGHT of them are started at once (libuv's pool has 4 threads by
 * default, shared with fs and dns: unbounded parallel zlib jobs fragment memory, as in ws).
 */

const MAX_IN_FLIGHT = 2;

interface Entry {
  job: CodecJob<unknown>;
  done: (result: unknown) => void;
  started: boolean;
}

const queue: Entry[] = [];
let head = 0;
let scheduled = false;
let inFlight = 0;
/** Turns of the event loop that ran a slice (read by tests: proof that work was split). */
let turns = 0;

/** Slices run so far by this thread (tests count them to see that a message was split). */
export function codecTurns(): number {
  return turns;
}

/** Jobs queued or waiting. */
export function pendingCodecJobs(): number {
  return queue.length - head + inFlight;
}

/** Run `job` to its end, one slice per event-loop turn, and pass its result to `done` (never synchronously). */
export function runCodecJob<T>(job: CodecJob<T>, done: (result: T) => void): void {
  queue.push({ job, done: done as (result: unknown) => void, started: false });
  schedule();
}

function schedule(): void {
  if (scheduled || head >= queue.length) return;
  scheduled = true;
  setImmediate(runOne);
}

function runOne(): void {
  scheduled = false;
  // The first entry that may run now: a job not yet started waits while MAX_IN_FLIGHT pool jobs run.
  let i = head;
  for (; i < queue.length; i++) if (queue[i]!.started || inFlight < MAX_IN_FLIGHT) break;
  if (i >= queue.length) return;
  const e = queue[i]!;
  queue[i] = queue[head]!;
  head++;
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
    e.started = true;
    queue.push(e);
  } else if (status === 'wait') {
    e.started = true;
    inFlight++;
    e.job.wake = () => {
      e.job.wake = undefined;
      inFlight--;
      queue.push(e);
      schedule();
    };
  } else {
    e.done(e.job.result);
  }
  schedule();
}
