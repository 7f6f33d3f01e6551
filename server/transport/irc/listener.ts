/**
 * The IRC listener: accepts, refuses addresses over their connection limit, and hands each
 * connection to `IrcConnection` (irc/connection.ts); every chat rule lives in the core.
 * @module
 */

import type { Hub } from "../../core/hub.ts";
import { IrcConnection, type IrcOptions } from "./connection.ts";

export type { IrcOptions } from "./connection.ts";

const encoder = new TextEncoder();

/** Serves IRC on a listener until it is closed. */
export function serveIrc(
  hub: Hub,
  listener: Deno.Listener,
  options: IrcOptions,
): { close(): void; finished: Promise<void> } {
  const connections = new Set<Promise<void>>();
  const accept = (async () => {
    try {
      for await (const conn of listener) {
        const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
        const refusal = hub.admit(ip);
        if (refusal) {
          void conn.write(encoder.encode(`ERROR :${refusal}\r\n`)).catch(() => {}).finally(() => {
            try {
              conn.close();
            } catch { /* gone */ }
          });
          continue;
        }
        const done = new IrcConnection(hub, conn, options).run();
        connections.add(done);
        void done.finally(() => connections.delete(done));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) {
        options.log.error("irc accept failed", { error });
      }
    }
  })();
  return {
    close: () => {
      try {
        listener.close();
      } catch { /* closed */ }
    },
    finished: accept.then(async () => {
      await Promise.allSettled([...connections]);
    }),
  };
}
