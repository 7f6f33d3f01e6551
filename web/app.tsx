/**
 * The web console: chat for everyone, and an admin view for admins. A client like any other:
 * it logs in over `/api/v1/session`, lives on `/ws`, and sends files over `/api/v1/files`.
 * Imports `protocol/` only (for types and limits).
 * @module
 */

import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { HEARTBEAT_CHECKS_PER_BEAT, HEARTBEAT_REF, heartbeatDue } from "../protocol/heartbeat.ts";
import { HEARTBEAT_MS } from "../protocol/limits.ts";
import type {
  AuditEntry,
  ClientFrame,
  ConnectionEntry,
  LogEntry,
  MessageFrame,
  RoomEntry,
  ScheduledEntry,
  ServerFrame,
  UserEntry,
} from "../protocol/frames.ts";

type Welcome = Extract<ServerFrame, { type: "welcome" }>;
type Stats = Extract<ServerFrame, { type: "stats" }>;

/** Everything the console shows, kept in one object so every frame is one small update. */
interface State {
  me: Welcome | null;
  connected: boolean;
  chat: string;
  messages: Record<string, MessageFrame[]>;
  hasMore: Record<string, boolean>;
  unread: Record<string, number>;
  rooms: RoomEntry[];
  users: UserEntry[];
  contacts: Array<{ username: string; online: boolean }>;
  scheduled: ScheduledEntry[];
  sessionFrom: string[];
  invites: Array<{ room: string; from: string }>;
  requests: Array<{ room: string; username: string }>;
  links: Array<{ room: string; token: string }>;
  notices: string[];
  errors: string[];
  // Admin.
  stats: Stats | null;
  connections: ConnectionEntry[];
  reports: Array<{ username: string; reporters: string[]; muted_until: string | null }>;
  audit: AuditEntry[];
  log: LogEntry[];
}

const initial: State = {
  me: null,
  connected: false,
  chat: "general",
  messages: {},
  hasMore: {},
  unread: {},
  rooms: [],
  users: [],
  contacts: [],
  scheduled: [],
  sessionFrom: [],
  invites: [],
  requests: [],
  links: [],
  notices: [],
  errors: [],
  stats: null,
  connections: [],
  reports: [],
  audit: [],
  log: [],
};

/** The chat a message belongs to, as this user names it. */
function chatOf(m: MessageFrame, me: string): string {
  if (m.type === "message") return m.room;
  return "@" + (m.from_username === me ? m.to_username : m.from_username);
}

function time(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function size(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1048576
    ? `${(n / 1024).toFixed(1)} KB`
    : `${(n / 1048576).toFixed(1)} MB`;
}

/** Merges messages into a chat's list by seq, without duplicates. */
function merge(list: MessageFrame[] = [], add: MessageFrame[]): MessageFrame[] {
  const bySeq = new Map(list.map((m) => [m.seq, m]));
  for (const m of add) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** The server's heartbeat, which the page it served carries (`--heartbeat`). */
const BEAT_MS = Number(document.body.dataset.heartbeatMs) || HEARTBEAT_MS;

/**
 * The connection to the server: one WebSocket, reconnecting with backoff, resuming by id. A
 * browser never says when the server's machine vanished without closing, so the console keeps a
 * heartbeat too: a `ping` after a beat without a word from the server, a new connection after
 * three.
 */
class Connection {
  #ws: WebSocket | null = null;
  #token: string;
  #lastId = "";
  #delay = 500;
  #closed = false;
  #lastHeard = 0;
  #pinged = 0;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  onFrame: (f: ServerFrame) => void = () => {};
  onState: (up: boolean) => void = () => {};

  constructor(token: string) {
    this.#token = token;
  }

  open(): void {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const since = this.#lastId ? `&since=${this.#lastId}` : "";
    const ws = new WebSocket(
      `${proto}://${location.host}/ws?token=${encodeURIComponent(this.#token)}${since}`,
    );
    this.#ws = ws;
    this.#lastHeard = Date.now();
    this.#pinged = 0;
    clearInterval(this.#watchdog);
    this.#watchdog = setInterval(() => this.#beat(ws), BEAT_MS / HEARTBEAT_CHECKS_PER_BEAT);
    ws.onopen = () => {
      this.#delay = 500;
      this.onState(true);
    };
    ws.onmessage = (e) => {
      this.#lastHeard = Date.now();
      this.#pinged = 0;
      // The server may put several frames in one message, one per line.
      for (const line of String(e.data).split("\n")) {
        if (!line) continue;
        const f = JSON.parse(line) as ServerFrame;
        if (f.type === "pong" && f.ref === HEARTBEAT_REF) continue;
        if ((f.type === "message" || f.type === "private") && f.id > this.#lastId) {
          this.#lastId = f.id;
        }
        this.onFrame(f);
      }
    };
    ws.onclose = () => this.#lost(ws);
  }

  /** A quarter beat's check: ping a silent server, give up on one silent for three beats. */
  #beat(ws: WebSocket): void {
    const due = heartbeatDue(Date.now() - this.#lastHeard, BEAT_MS, this.#pinged);
    if (due.gone) {
      // Its close would wait on the dead server: forget it and start afresh.
      ws.onclose = ws.onmessage = ws.onopen = null;
      ws.close();
      this.#lost(ws);
      return;
    }
    if (due.probe) {
      this.#pinged++;
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: "ping", ref: HEARTBEAT_REF }));
      }
    }
  }

  #lost(ws: WebSocket): void {
    if (ws !== this.#ws) return;
    clearInterval(this.#watchdog);
    this.onState(false);
    if (this.#closed) return;
    setTimeout(() => this.open(), this.#delay);
    this.#delay = Math.min(this.#delay * 2, 15_000);
  }

  send(frame: ClientFrame): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(frame));
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#watchdog);
    this.#ws?.close();
  }
}

function Login({ onToken }: { onToken: (token: string) => void }) {
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    const res = await fetch("/api/v1/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
    });
    const body = await res.json();
    if (!res.ok) return setError(body.error.message);
    sessionStorage.setItem("chat-token", body.token);
    onToken(body.token);
  };
  return (
    <form class="login" onSubmit={submit} data-testid="login">
      <h1>chat</h1>
      <p>Log in, or pick a new name and password to register.</p>
      <input
        name="username"
        placeholder="name"
        autocomplete="username"
        required
        data-testid="login-name"
      />
      <input
        name="password"
        type="password"
        placeholder="password (6+ characters)"
        autocomplete="current-password"
        required
        data-testid="login-password"
      />
      <button type="submit" data-testid="login-submit">Log in</button>
      {error && <p class="error" data-testid="login-error">{error}</p>}
    </form>
  );
}

function App() {
  const [token, setToken] = useState<string | null>(sessionStorage.getItem("chat-token"));
  const [s, setS] = useState<State>(initial);
  const [view, setView] = useState<"chat" | "admin">("chat");
  const conn = useRef<Connection | null>(null);
  const update = (fn: (s: State) => Partial<State>) => setS((prev) => ({ ...prev, ...fn(prev) }));

  useEffect(() => {
    if (!token) return;
    const c = new Connection(token);
    conn.current = c;
    c.onState = (up) => update(() => ({ connected: up }));
    c.onFrame = (f) => handle(f);
    c.open();
    return () => c.close();
  }, [token]);

  const send = (f: ClientFrame) => conn.current?.send(f);

  function handle(f: ServerFrame): void {
    switch (f.type) {
      case "welcome":
        update(() => ({ me: f }));
        send({ type: "rooms" });
        send({ type: "users" });
        send({ type: "contacts" });
        send({ type: "scheduled" });
        send({ type: "unread_counts" });
        if (f.admin) {
          send({ type: "stats" });
          send({ type: "log_subscribe" });
        }
        return;
      case "message":
      case "private":
        return update((s) => {
          const chat = chatOf(f, s.me?.username ?? "");
          const open = chat === s.chat;
          return {
            messages: { ...s.messages, [chat]: merge(s.messages[chat], [f]) },
            unread: open ? s.unread : { ...s.unread, [chat]: (s.unread[chat] ?? 0) + 1 },
          };
        });
      case "history":
        return update((s) => ({
          messages: { ...s.messages, [f.chat]: merge(s.messages[f.chat], f.messages) },
          hasMore: f.reason === "unread" ? s.hasMore : { ...s.hasMore, [f.chat]: f.has_more },
          unread: f.reason === "unread" && f.chat !== s.chat
            ? { ...s.unread, [f.chat]: (s.unread[f.chat] ?? 0) + f.messages.length }
            : s.unread,
        }));
      case "message_deleted":
        return update((s) => ({
          messages: {
            ...s.messages,
            [f.chat]: (s.messages[f.chat] ?? []).filter((m) => m.id !== f.id),
          },
        }));
      case "unread_counts":
        return update((s) => ({
          unread: Object.fromEntries(
            f.chats.filter((c) => c.chat !== s.chat).map((c) => [c.chat, c.unread]),
          ),
        }));
      case "rooms_list":
        return update(() => ({ rooms: f.rooms }));
      case "users_list":
        return update(() => ({ users: f.all }));
      case "contacts_list":
        return update(() => ({ contacts: f.contacts }));
      case "scheduled_list":
        return update(() => ({ scheduled: f.entries }));
      case "scheduled":
        return update((s) => ({
          scheduled: [...s.scheduled, f.entry].sort((a, b) => a.at.localeCompare(b.at)),
        }));
      case "scheduled_cancelled":
        return update((s) => ({ scheduled: s.scheduled.filter((e) => e.id !== f.id) }));
      case "system":
        if (f.event === "online" || f.event === "offline") send({ type: "users" });
        if (f.event === "joined" || f.event === "left") send({ type: "rooms" });
        return update((s) => ({ notices: [...s.notices.slice(-4), f.message] }));
      case "joined":
      case "left":
        send({ type: "rooms" });
        if (f.type === "joined") update(() => ({ chat: f.room }));
        else update((s) => ({ chat: s.chat === f.room ? "general" : s.chat }));
        return;
      case "session_request":
        return update((s) => ({ sessionFrom: [...new Set([...s.sessionFrom, f.from_username])] }));
      case "session_accepted":
      case "session_rejected":
      case "session_ended":
        return update((s) => ({ notices: [...s.notices.slice(-4), f.message] }));
      case "invite":
        return update((s) => ({
          invites: [...s.invites.filter((i) => i.room !== f.room), {
            room: f.room,
            from: f.from_username,
          }],
        }));
      case "join_request":
        return update((s) => ({
          requests: [...s.requests, { room: f.room, username: f.username }],
        }));
      case "link":
        return update((s) => ({ links: [...s.links, { room: f.room, token: f.token }] }));
      case "error":
        return update((s) => ({ errors: [...s.errors.slice(-2), f.message] }));
      case "bye":
        return update((s) => ({ errors: [...s.errors.slice(-2), f.reason] }));
      case "stats":
        return update(() => ({ stats: f }));
      case "connections_list":
        return update(() => ({ connections: f.connections }));
      case "reports_list":
        return update(() => ({ reports: f.reports }));
      case "audit_log":
        return update(() => ({ audit: f.entries }));
      case "log":
        return update((s) => ({ log: [...s.log, ...f.entries].slice(-200) }));
      default:
        return;
    }
  }

  if (!token) return <Login onToken={setToken} />;
  if (!s.me) return <p class="loading">Connecting…</p>;
  const logout = async () => {
    await fetch("/api/v1/session", {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}` },
    });
    sessionStorage.removeItem("chat-token");
    conn.current?.close();
    setS(initial);
    setToken(null);
  };
  return (
    <div class="app">
      <header>
        <b>chat</b>
        <span data-testid="me">{s.me.username}</span>
        <span
          class={s.connected ? "dot on" : "dot"}
          title={s.connected ? "connected" : "reconnecting"}
        />
        <nav>
          <button type="button" class={view === "chat" ? "on" : ""} onClick={() => setView("chat")}>
            Chat
          </button>
          {s.me.admin && (
            <button
              type="button"
              class={view === "admin" ? "on" : ""}
              onClick={() => setView("admin")}
              data-testid="tab-admin"
            >
              Admin
            </button>
          )}
          <button type="button" onClick={logout}>Log out</button>
        </nav>
      </header>
      {s.errors.length > 0 && (
        <div
          class="errors"
          data-testid="errors"
          onClick={() => update(() => ({ errors: [] }))}
        >
          {s.errors.map((e, i) => <div key={i}>{e}</div>)}
        </div>
      )}
      {view === "chat"
        ? <Chat s={s} send={send} update={update} token={token} />
        : <Admin s={s} send={send} />}
    </div>
  );
}

interface ViewProps {
  s: State;
  send: (f: ClientFrame) => void;
}

function Chat(
  { s, send, update, token }: ViewProps & {
    update: (fn: (s: State) => Partial<State>) => void;
    token: string;
  },
) {
  const me = s.me!.username;
  const [replyTo, setReplyTo] = useState<MessageFrame | null>(null);
  const [drag, setDrag] = useState(false);
  const list = s.messages[s.chat] ?? [];
  const pane = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  const lastSeq = list.at(-1)?.seq;
  // Follow new messages while the reader is at the bottom; stay put while they read older ones.
  useEffect(() => {
    const el = pane.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [lastSeq, s.chat]);
  const open = (chat: string) => {
    update((st) => ({ chat, unread: { ...st.unread, [chat]: 0 } }));
    if (!s.messages[chat]) send({ type: "history", chat });
    if (!chat.startsWith("@")) send({ type: "join", room: chat });
  };
  const older = () =>
    list[0] && send({ type: "history", chat: s.chat, before: list[0].seq, limit: 50 });
  const submit = (e: Event) => {
    e.preventDefault();
    const input = (e.target as HTMLFormElement).elements.namedItem("text") as HTMLInputElement;
    const text = input.value;
    if (!text.trim()) return;
    const reply = replyTo ? { reply_to: replyTo.id } : {};
    if (s.chat.startsWith("@")) {
      send({ type: "private", target_username: s.chat.slice(1), message: text, ...reply });
    } else send({ type: "message", room: s.chat, message: text, ...reply });
    input.value = "";
    setReplyTo(null);
  };
  const upload = async (files: FileList | null) => {
    for (const file of files ? [...files] : []) {
      const where = s.chat.startsWith("@")
        ? `to=${encodeURIComponent(s.chat.slice(1))}`
        : `room=${encodeURIComponent(s.chat)}`;
      const res = await fetch(`/api/v1/files?${where}&name=${encodeURIComponent(file.name)}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": file.type || "application/octet-stream",
        },
        body: file,
      });
      if (!res.ok) {
        const body = await res.json();
        update((st) => ({ errors: [...st.errors, body.error.message] }));
      }
    }
  };
  const room = s.rooms.find((r) => r.name === s.chat);
  const isOwner = room?.private && room.owner === me;
  return (
    <main class="chat">
      <aside>
        <h3>Rooms</h3>
        <ul data-testid="rooms">
          {s.rooms.map((r) => (
            <li
              class={r.name === s.chat ? "on" : ""}
              onClick={() => open(r.name)}
              data-testid={`room-${r.name}`}
            >
              {r.private ? "◆ " : "#"}
              {r.name} <small>{r.online}/{r.members}</small>
              {(s.unread[r.name] ?? 0) > 0 && <span class="badge">{s.unread[r.name]}</span>}
            </li>
          ))}
        </ul>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const f = e.target as HTMLFormElement;
            const name = (f.elements.namedItem("room") as HTMLInputElement).value.trim();
            const priv = (f.elements.namedItem("private") as HTMLInputElement).checked;
            if (name) {
              send(
                priv ? { type: "create_group", room: name } : { type: "join", room: name },
              );
            }
            f.reset();
          }}
        >
          <input name="room" placeholder="join or create" />
          <label>
            <input type="checkbox" name="private" /> private
          </label>
        </form>
        <h3>People</h3>
        <ul data-testid="users">
          {s.users.map((u) =>
            u.username === me ? null : (
              <li>
                <span class={u.online ? "dot on" : "dot"} />
                <a onClick={() => open("@" + u.username)}>{u.username}</a>
                {(s.unread["@" + u.username] ?? 0) > 0 && (
                  <span class="badge">{s.unread["@" + u.username]}</span>
                )}
                {u.online && (
                  <button
                    type="button"
                    class="small"
                    title="private session"
                    onClick={() => send({ type: "session_request", target_username: u.username })}
                  >
                    ⇄
                  </button>
                )}
              </li>
            )
          )}
        </ul>
        <h3>Contacts</h3>
        <ul data-testid="contacts">
          {s.contacts.map((c) => (
            <li>
              <span class={c.online ? "dot on" : "dot"} />{" "}
              <a onClick={() => open("@" + c.username)}>{c.username}</a>
              <button
                type="button"
                class="small"
                onClick={() => send({ type: "remove_contact", username: c.username })}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const i = (e.target as HTMLFormElement).elements.namedItem(
              "contact",
            ) as HTMLInputElement;
            if (i.value.trim()) send({ type: "add_contact", username: i.value.trim() });
            i.value = "";
          }}
        >
          <input name="contact" placeholder="add a contact" />
        </form>
        <h3>Scheduled</h3>
        <ul data-testid="scheduled">
          {s.scheduled.map((e) => (
            <li>
              {time(e.at)} {e.chat}: {e.message}
              <button
                type="button"
                class="small"
                onClick={() => send({ type: "cancel_scheduled", id: e.id })}
              >
                cancel
              </button>
            </li>
          ))}
        </ul>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const f = e.target as HTMLFormElement;
            const at = (f.elements.namedItem("at") as HTMLInputElement).value;
            const text = (f.elements.namedItem("text") as HTMLInputElement).value;
            if (!at || !text) return;
            const target = s.chat.startsWith("@")
              ? { target_username: s.chat.slice(1) }
              : { room: s.chat };
            send({ type: "schedule", message: text, at: new Date(at).toISOString(), ...target });
            f.reset();
          }}
        >
          <input name="at" type="datetime-local" />
          <input name="text" placeholder="message for later" />
          <button type="submit">Schedule</button>
        </form>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const i = (e.target as HTMLFormElement).elements.namedItem("link") as HTMLInputElement;
            if (i.value.trim()) send({ type: "join_link", token: i.value.trim() });
            i.value = "";
          }}
        >
          <input name="link" placeholder="join with an invite link token" />
        </form>
      </aside>
      <section
        class={drag ? "pane drag" : "pane"}
        onDragOver={(e) => {
          e.preventDefault();
          setDrag(true);
        }}
        onDragLeave={() => setDrag(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDrag(false);
          void upload(e.dataTransfer?.files ?? null);
        }}
      >
        <h2 data-testid="chat-title">
          {s.chat.startsWith("@") ? `Private: ${s.chat.slice(1)}` : `#${s.chat}`}
        </h2>
        {s.sessionFrom.map((from) => (
          <div class="prompt" data-testid="session-prompt">
            {from} wants a private session.
            <button
              type="button"
              onClick={() => {
                send({ type: "session_response", target_username: from, accepted: true });
                update((st) => ({
                  sessionFrom: st.sessionFrom.filter((x) => x !== from),
                  chat: "@" + from,
                }));
              }}
            >
              Accept
            </button>
            <button
              type="button"
              onClick={() => {
                send({ type: "session_response", target_username: from, accepted: false });
                update((st) => ({ sessionFrom: st.sessionFrom.filter((x) => x !== from) }));
              }}
            >
              Reject
            </button>
          </div>
        ))}
        {s.invites.map((i) => (
          <div class="prompt" data-testid="invite-prompt">
            {i.from} invites you to ◆ {i.room}.
            <button
              type="button"
              onClick={() => {
                send({ type: "invite_response", room: i.room, accepted: true });
                update((st) => ({ invites: st.invites.filter((x) => x.room !== i.room) }));
              }}
            >
              Join
            </button>
            <button
              type="button"
              onClick={() => {
                send({ type: "invite_response", room: i.room, accepted: false });
                update((st) => ({ invites: st.invites.filter((x) => x.room !== i.room) }));
              }}
            >
              Decline
            </button>
          </div>
        ))}
        {s.requests.map((r) => (
          <div class="prompt">
            {r.username} asks to join ◆ {r.room}.
            {[true, false].map((approved) => (
              <button
                type="button"
                onClick={() => {
                  send({ type: "join_decision", room: r.room, username: r.username, approved });
                  update((st) => ({ requests: st.requests.filter((x) => x !== r) }));
                }}
              >
                {approved ? "Let in" : "Refuse"}
              </button>
            ))}
          </div>
        ))}
        {isOwner && (
          <div class="owner">
            <form
              onSubmit={(e) => {
                e.preventDefault();
                const i = (e.target as HTMLFormElement).elements.namedItem(
                  "who",
                ) as HTMLInputElement;
                if (i.value.trim()) {
                  send({ type: "invite", room: s.chat, username: i.value.trim() });
                }
                i.value = "";
              }}
            >
              <input name="who" placeholder="invite someone" />
            </form>
            <button type="button" onClick={() => send({ type: "create_link", room: s.chat })}>
              Invite link
            </button>
            {s.links.filter((l) => l.room === s.chat).map((l) => (
              <code>
                {l.token}{" "}
                <button
                  type="button"
                  class="small"
                  onClick={() => send({ type: "revoke_link", room: s.chat, token: l.token })}
                >
                  revoke
                </button>
              </code>
            ))}
          </div>
        )}
        {s.hasMore[s.chat] && (
          <button type="button" class="older" onClick={older} data-testid="older">
            Load older messages
          </button>
        )}
        <ol
          class="messages"
          data-testid="messages"
          ref={pane}
          onScroll={(e) => {
            const el = e.currentTarget as HTMLOListElement;
            atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
            // Scrolling to the top pages back through history.
            if (el.scrollTop === 0 && s.hasMore[s.chat]) older();
          }}
        >
          {list.map((m) => (
            <li data-testid="message">
              <time>{time(m.timestamp)}</time> <b>{m.from_username}</b>
              {m.reply_to && (
                <span class="reply">↪ {m.reply_to.from_username}: {m.reply_to.message}</span>
              )}
              <span class="text">{m.message}</span>
              {m.file && (
                <a
                  class="file"
                  href={`/api/v1/files/${m.file.id}?token=${encodeURIComponent(token)}`}
                  download={m.file.name}
                  data-testid="file-link"
                >
                  ↓ {m.file.name} ({size(m.file.size)})
                </a>
              )}
              <span class="actions">
                <button type="button" class="small" onClick={() => setReplyTo(m)}>reply</button>
                {(m.from_username === me || s.me!.admin) && (
                  <button
                    type="button"
                    class="small"
                    onClick={() => send({ type: "delete_message", id: m.id })}
                    data-testid="delete"
                  >
                    delete
                  </button>
                )}
              </span>
            </li>
          ))}
        </ol>
        <div class="notices">{s.notices.map((n, i) => <div key={i}>{n}</div>)}</div>
        {replyTo && (
          <div class="replying">
            Replying to {replyTo.from_username}: {replyTo.message.slice(0, 60)}
            <button type="button" class="small" onClick={() => setReplyTo(null)}>×</button>
          </div>
        )}
        <form class="composer" onSubmit={submit}>
          <input
            name="text"
            placeholder={`Message ${s.chat.startsWith("@") ? s.chat : "#" + s.chat}`}
            autocomplete="off"
            data-testid="composer"
          />
          <label class="upload">
            Attach<input
              type="file"
              multiple
              onChange={(e) => void upload((e.target as HTMLInputElement).files)}
              data-testid="upload"
            />
          </label>
          <button type="submit" data-testid="send">Send</button>
        </form>
      </section>
    </main>
  );
}

function Admin({ s, send }: ViewProps) {
  useEffect(() => {
    const refresh = () => {
      send({ type: "stats" });
      send({ type: "connections" });
      send({ type: "reports" });
      send({ type: "audit", limit: 50 });
      send({ type: "users" });
    };
    refresh();
    const timer = setInterval(refresh, 5000);
    return () => clearInterval(timer);
  }, []);
  const act = (type: "kick" | "mute" | "unmute" | "ban" | "unban", username: string) => {
    send({ type, username } as ClientFrame);
    setTimeout(() => send({ type: "reports" }), 300);
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
        <h3>Clients</h3>
        <table data-testid="clients">
          <thead>
            <tr>
              <th>login</th>
              <th>transport</th>
              <th>IP</th>
              <th>connected</th>
              <th>last seen</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {s.connections.map((c) => (
              <tr>
                <td>{c.username ?? "—"}</td>
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
                      <button type="button" class="small" onClick={() => act("kick", c.username!)}>
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
        <p>
          All users: {s.users.map((u) => (
            <span class="user">
              {u.username}
              {!u.online && u.username !== s.me!.username && (
                <button
                  type="button"
                  class="small"
                  onClick={() => act("unban", u.username)}
                >
                  unban
                </button>
              )}
            </span>
          ))}
        </p>
      </section>
      <section>
        <h3>Register a user</h3>
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
        <h3>Reports and mutes</h3>
        <ul data-testid="reports">
          {s.reports.map((r) => (
            <li>
              {r.username}: {r.reporters.length} report(s){r.muted_until &&
                `, muted until ${new Date(r.muted_until).toLocaleTimeString()}`}
            </li>
          ))}
        </ul>
        <h3>Audit</h3>
        <ul data-testid="audit">
          {s.audit.map((a) => (
            <li>{time(a.at)} {a.actor} {a.action} {a.target}{a.reason && `: ${a.reason}`}</li>
          ))}
        </ul>
      </section>
      <section>
        <h3>Service log</h3>
        <ol class="log" data-testid="log">
          {s.log.slice(-60).map((l, i) => (
            <li key={i} class={`log-${l.kind}`}>{time(l.at)} {l.kind}: {l.text}</li>
          ))}
        </ol>
      </section>
    </main>
  );
}

render(<App />, document.getElementById("app")!);
