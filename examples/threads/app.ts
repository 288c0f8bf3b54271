// examples/threads/app.ts: every thread loads this module and runs its default export.
import type { Server, ThreadContext } from '../../src/index.js';

export default function setup(server: Server, thread: ThreadContext): void {
  server.handleOpen((conn) => {
    conn.subscribe('chat');
    void conn.write(`welcome: thread ${thread.index} of ${thread.threads} serves you`);
  });
  // A publish on any thread reaches the subscribers of `chat` on every thread.
  server.handleData((_conn, data) => void server.publish('chat', data.toString()));
}
