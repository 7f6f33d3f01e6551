/**
 * The accept loop every line-based listener shares (TCP JSON/telnet, IRC): admit or refuse each
 * address (with a line in the wire's own words), serve the rest, and know when all have ended.
 * @module
 */

import type { Hub } from "../core/hub.ts";
import type { Logger } from "../log.ts";

/** A running listener. */
export interface ListenerServer {
  /** Stops accepting; open connections are closed by the hub's shutdown. */
  close(): void;
  /** Settles when the accept loop and every connection have ended. */
  finished: Promise<void>;
}

const encoder = new TextEncoder();

/** Accepts on `listener` until it is closed; `serve` runs one connection to its end. */
export function acceptConnections(
  hub: Hub,
  listener: Deno.Listener,
  options: {
    /** The wire's name, for the log. */
    name: string;
    log: Logger;
    /** The line that tells a refused client why (then it is closed). */
    refusal: (reason: string) => string;
    serve: (conn: Deno.Conn) => Promise<void>;
  },
): ListenerServer {
  const connections = new Set<Promise<void>>();
  const accept = (async () => {
    try {
      for await (const conn of listener) {
        const refusal = hub.admit((conn.remoteAddr as Deno.NetAddr).hostname);
        if (refusal) {
          refuse(conn, options.refusal(refusal));
          continue;
        }
        // Every write already carries all that queued for the connection (the outbound queue
        // joins them), so Nagle's algorithm could only hold a message back until the reader's
        // delayed ACK: off, as the HTTP listener has it.
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch { /* closed already: serve() finds out */ }
        const done = options.serve(conn);
        connections.add(done);
        void done.finally(() => connections.delete(done));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) {
        options.log.error(`${options.name} accept failed`, { error });
      }
    }
  })();
  return {
    close: () => {
      try {
        listener.close();
      } catch { /* already closed */ }
    },
    finished: accept.then(async () => {
      await Promise.allSettled([...connections]);
    }),
  };
}

/** Writes the refusal, then closes. */
function refuse(conn: Deno.Conn, line: string): void {
  void conn.write(encoder.encode(line)).catch(() => {}).finally(() => {
    try {
      conn.close();
    } catch { /* gone */ }
  });
}
