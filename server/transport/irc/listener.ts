/**
 * The IRC listener: accepts, refuses addresses over their connection limit, and hands each
 * connection to `IrcConnection` (irc/connection.ts); every chat rule lives in the core.
 * @module
 */

import type { Hub } from "../../core/hub.ts";
import { acceptConnections, type ListenerServer } from "../accept.ts";
import { IrcConnection, type IrcOptions } from "./connection.ts";

export type { IrcOptions } from "./connection.ts";

/** Serves IRC on a listener until it is closed. */
export function serveIrc(hub: Hub, listener: Deno.Listener, options: IrcOptions): ListenerServer {
  return acceptConnections(hub, listener, {
    name: "irc",
    log: options.log,
    refusal: (reason) => `ERROR :${reason}\r\n`,
    serve: (conn) => new IrcConnection(hub, conn, options).run(),
  });
}
