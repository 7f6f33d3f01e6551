/**
 * The admin view: counters, the clients table with moderation actions, registering users,
 * reports, the audit trail and the live service log.
 * @module
 */

import { useEffect, useState } from "preact/hooks";
import type { ClientFrame } from "../protocol/frames.ts";
import { dateTime, time } from "./format.ts";
import type { ViewProps } from "./chat.tsx";

/** The admin tab. */
/** Audit entries shown at once (older ones a click away). */
const AUDIT_PAGE = 10;

export function Admin({ s, send }: ViewProps) {
  // Cluster mode: connections name their node.
  const cluster = s.connections.some((c) => c.node !== undefined);
  // The audit trail, a page at a time: the newest, or older than an entry.
  const [auditBefore, setAuditBefore] = useState<string[]>([]);
  const auditPage = (before: string | undefined) =>
    send({ type: "audit", limit: AUDIT_PAGE, ...(before ? { before } : {}) });
  useEffect(() => {
    const refresh = () => {
      send({ type: "stats" });
      send({ type: "connections" });
      send({ type: "reports" });
      auditPage(auditBefore.at(-1));
      send({ type: "clients" });
    };
    refresh();
    const timer = setInterval(refresh, 5000);
    return () => clearInterval(timer);
  }, [auditBefore]);
  const act = (type: "kick" | "mute" | "unmute" | "ban" | "unban", username: string) => {
    send({ type, username } as ClientFrame);
    setTimeout(() => {
      send({ type: "reports" });
      send({ type: "clients" });
    }, 300);
  };
  const st = s.stats;
  return (
    <main class="admin" data-testid="admin">
      <section class="counters" data-testid="counters">
        <div>
          <b>{st?.online_users ?? "–"}</b> online
        </div>
        <div>
          <b>{st?.connections ?? "–"}</b> connections
        </div>
        <div>
          <b>{st?.messages_last_minute ?? "–"}</b> messages / minute
        </div>
        <div>
          <b>{st ? Math.round(st.uptime_s / 60) : "–"}</b> min up
        </div>
      </section>
      <section>
        <h2>Connections now</h2>
        <div class="scroll" tabIndex={0} role="region" aria-label="connections now">
          <table data-testid="clients">
            <thead>
              <tr>
                <th>login</th>
                {cluster && <th>node</th>}
                <th>transport</th>
                <th>IP</th>
                <th>connected</th>
                <th>last seen</th>
                <th>
                  <span class="sr">actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {s.connections.map((c) => (
                <tr>
                  <td>{c.username ?? "—"}</td>
                  {cluster && <td>{c.node ?? ""}</td>}
                  <td>{c.transport}</td>
                  <td>{c.ip}</td>
                  <td>{time(c.connected_at)}</td>
                  <td>{time(c.last_seen)}</td>
                  <td>
                    {c.username && c.username !== s.me!.username && (
                      <span>
                        <button
                          type="button"
                          class="small"
                          onClick={() => act("mute", c.username!)}
                          data-testid={`mute-${c.username}`}
                        >
                          mute
                        </button>
                        <button
                          type="button"
                          class="small"
                          onClick={() => act("unmute", c.username!)}
                        >
                          unmute
                        </button>
                        <button
                          type="button"
                          class="small"
                          onClick={() => act("kick", c.username!)}
                        >
                          kick
                        </button>
                        <button type="button" class="small" onClick={() => act("ban", c.username!)}>
                          ban
                        </button>
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <h2>All clients, last visit first</h2>
        <div class="scroll" tabIndex={0} role="region" aria-label="all clients">
          <table data-testid="all-clients">
            <thead>
              <tr>
                <th>login</th>
                <th>last seen</th>
                <th>last IP</th>
                <th>state</th>
                <th>actions</th>
              </tr>
            </thead>
            <tbody>
              {s.clients.map((c) => (
                <tr>
                  <td>{c.username}{c.admin ? " (admin)" : ""}</td>
                  <td>{c.online ? "online" : c.last_seen ? dateTime(c.last_seen) : "never"}</td>
                  <td>{c.last_ip ?? "—"}</td>
                  <td>
                    {c.banned_until
                      ? "banned"
                      : c.muted_until
                      ? "muted"
                      : c.registered
                      ? ""
                      : "guest"}
                  </td>
                  <td>
                    {c.username !== s.me!.username && (c.banned_until
                      ? (
                        <button
                          type="button"
                          class="small"
                          onClick={() => act("unban", c.username)}
                          data-testid={`unban-${c.username}`}
                        >
                          unban
                        </button>
                      )
                      : (
                        <button
                          type="button"
                          class="small"
                          onClick={() => act("ban", c.username)}
                          data-testid={`ban-${c.username}`}
                        >
                          ban
                        </button>
                      ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section>
        <h2>Register a user</h2>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const f = e.target as HTMLFormElement;
            const get = (n: string) => (f.elements.namedItem(n) as HTMLInputElement);
            send({
              type: "create_user",
              username: get("name").value,
              password: get("password").value,
              admin: get("admin").checked,
            });
            f.reset();
          }}
        >
          <input name="name" placeholder="name" required />
          <input name="password" type="password" placeholder="password" required />
          <label>
            <input name="admin" type="checkbox" /> admin
          </label>
          <button type="submit">Create</button>
        </form>
      </section>
      <section>
        <h2>Reports and mutes</h2>
        <ul data-testid="reports">
          {s.reports.map((r) => (
            <li>
              {r.username}: {r.reporters.length} report(s){r.muted_until &&
                `, muted until ${new Date(r.muted_until).toLocaleTimeString()}`}
            </li>
          ))}
        </ul>
        <h2>Audit</h2>
        <ul data-testid="audit">
          {s.audit.map((a) => (
            <li>{time(a.at)} {a.actor} {a.action} {a.target}{a.reason && `: ${a.reason}`}</li>
          ))}
        </ul>
        <div class="pager">
          <button
            type="button"
            class="small"
            disabled={auditBefore.length === 0}
            onClick={() => setAuditBefore(auditBefore.slice(0, -1))}
          >
            newer
          </button>
          <button
            type="button"
            class="small"
            disabled={!s.auditMore || s.audit.length === 0}
            onClick={() => setAuditBefore([...auditBefore, s.audit.at(-1)!.id])}
            data-testid="audit-older"
          >
            older
          </button>
        </div>
      </section>
      <section>
        <h2>Service log</h2>
        <ol class="log" data-testid="log" tabIndex={0} aria-label="service log, newest last">
          {s.log.slice(-60).map((l, i) => (
            <li key={i} class={`log-${l.kind}`}>{time(l.at)} {l.kind}: {l.text}</li>
          ))}
        </ol>
      </section>
    </main>
  );
}
