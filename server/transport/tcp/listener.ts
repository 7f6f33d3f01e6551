/**
 * The TCP listener: newline-delimited JSON for programs and plain text for people on telnet or
 * netcat, on one port. It accepts, refuses addresses over their connection limit, and hands
 * each connection to `TcpConnection`; every chat rule lives in the core.
 * @module
 */

import type { Hub } from "../../core/hub.ts";
import { TcpConnection, type TcpOptions } from "./connection.ts";

export type { TcpOptions } from "./connection.ts";

/** A running TCP listener. */
export interface TcpServer {
  /** Stops accepting; open connections are closed by the hub's shutdown. */
  close(): void;
  /** Settles when the accept loop and every connection have ended. */
  finished: Promise<void>;
}

const encoder = new TextEncoder();

/** Serves the chat on a TCP listener. */
export function serveTcp(hub: Hub, listener: Deno.Listener, options: TcpOptions): TcpServer {
  const connections = new Set<Promise<void>>();
  const accept = (async () => {
    try {
      for await (const conn of listener) {
        const refusal = hub.admit((conn.remoteAddr as Deno.NetAddr).hostname);
        if (refusal) {
          refuse(conn, refusal);
          continue;
        }
        // The last resort for peers that answer no heartbeat (netcat, seed clients): the
        // system's TCP keepalive finds a vanished machine, if only after its own timeout.
        try {
          (conn as Deno.TcpConn).setKeepAlive(true);
        } catch { /* not a TCP connection */ }
        const done = new TcpConnection(hub, conn, options).run();
        connections.add(done);
        void done.finally(() => connections.delete(done));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) {
        options.log.error("tcp accept failed", { error });
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

/** Tells a refused client why (as a JSON line, which people can read too), then closes. */
function refuse(conn: Deno.Conn, reason: string): void {
  const line = JSON.stringify({ type: "bye", code: "too_slow", reason }) + "\n";
  void conn.write(encoder.encode(line)).catch(() => {}).finally(() => {
    try {
      conn.close();
    } catch { /* gone */ }
  });
}
