/**
 * The TCP listener: newline-delimited JSON for programs and plain text for people on telnet or
 * netcat, on one port. It accepts, refuses addresses over their connection limit, and hands
 * each connection to `TcpConnection`; every chat rule lives in the core.
 * @module
 */

import type { Hub } from "../../core/hub.ts";
import { acceptConnections, type ListenerServer } from "../accept.ts";
import { TcpConnection, type TcpOptions } from "./connection.ts";

export type { TcpOptions } from "./connection.ts";

/** A running TCP listener. */
export type TcpServer = ListenerServer;

/** Serves the chat on a TCP listener. */
export function serveTcp(hub: Hub, listener: Deno.Listener, options: TcpOptions): TcpServer {
  return acceptConnections(hub, listener, {
    name: "tcp",
    log: options.log,
    // As a JSON line, which people can read too.
    refusal: (reason) => JSON.stringify({ type: "bye", code: "too_slow", reason }) + "\n",
    serve: (conn) => {
      // The last resort for peers that answer no heartbeat (netcat, seed clients): the
      // system's TCP keepalive finds a vanished machine, if only after its own timeout.
      try {
        (conn as Deno.TcpConn).setKeepAlive(true);
      } catch { /* not a TCP connection */ }
      return new TcpConnection(hub, conn, options).run();
    },
  });
}
