/**
 * The seam through which a `Server`'s topics reach beyond this process: a thread bus
 * (`src/scale/`) or a Redis adapter attaches a `TopicBus` to a server, and the server tells it
 * which topics have local interest and what was published here. What a bus brings in from
 * elsewhere is handed to `server.deliver(...)`, which fans out locally and forwards to the other
 * buses, never back to the one it came from.
 */
export interface TopicBus {
  /** `topic` got its first local subscriber (also called on attach for every live topic). */
  topicAdded(topic: string): void;
  /** `topic` lost its last local subscriber. */
  topicRemoved(topic: string): void;
  /**
   * A message was published (`topic` a string) or broadcast (`topic` undefined) on this server,
   * by the application or by another bus. It must not block and must not throw; what it cannot
   * forward it counts. `data` is the caller's value: copy it if you keep it past the call.
   * `from` is the bus the message came in on (undefined: published by the application here), so a
   * bus whose peers already hear of it another way (a Redis adapter per thread, beside the thread
   * bus) can leave it alone.
   */
  forward(topic: string | undefined, data: string | Uint8Array, isBinary: boolean, key: string | undefined, from: TopicBus | undefined): void;
}

/** What `server.attachBus(bus)` returns. */
export interface BusAttachment {
  /** Stop telling the bus anything (idempotent). */
  detach(): void;
}

