/**
 * The chat view's side column: rooms (join or create), people, contacts, scheduled messages
 * and invite links.
 * @module
 */

import type { ViewProps } from "./chat.tsx";
import { time } from "./format.ts";

/** Saying you are away (others see your words), and back. */
function Away({ s, send }: ViewProps) {
  const mine = s.users.find((u) => u.username === s.me!.username)?.away;
  // The list is asked again so that your own line (and the Back button) follows at once.
  const set = (message?: string) => {
    send(message ? { type: "away", message } : { type: "away" });
    send({ type: "users" });
  };
  return mine === undefined
    ? (
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const f = e.target as HTMLFormElement;
          const words = (f.elements.namedItem("away") as HTMLInputElement).value.trim();
          if (words) set(words);
          f.reset();
        }}
      >
        <input
          name="away"
          placeholder="away? say why"
          aria-label="away message"
          data-testid="away-input"
        />
      </form>
    )
    : (
      <p class="away-mine">
        Away: {mine}{" "}
        <button type="button" class="small" onClick={() => set()} data-testid="back">
          I'm back
        </button>
      </p>
    );
}

/** The side column; `open` switches the pane to a chat. */
export function Sidebar({ s, send, open }: ViewProps & { open: (chat: string) => void }) {
  const me = s.me!.username;
  return (
    <aside>
      <h2>Rooms</h2>
      <ul data-testid="rooms">
        {s.rooms.map((r) => (
          <li class={r.name === s.chat ? "on" : ""} data-testid={`room-${r.name}`}>
            <button
              type="button"
              class="link"
              onClick={() =>
                open(r.name)}
              aria-current={r.name === s.chat ? "true" : undefined}
            >
              {r.private ? "◆ " : "#"}
              {r.name} <small>{r.online}/{r.members}</small>
              {(s.unread[r.name] ?? 0) > 0 && <span class="badge">{s.unread[r.name]}</span>}
            </button>
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
        <input name="room" placeholder="join or create" aria-label="room to join or create" />
        <label class="check">
          <input type="checkbox" name="private" /> private
        </label>
      </form>
      <h2>People</h2>
      <ul data-testid="users">
        {s.users.map((u) =>
          u.username === me ? null : (
            <li>
              <span class={u.online ? "dot on" : "dot"} />
              <button type="button" class="link" onClick={() => open("@" + u.username)}>
                {u.username}
              </button>
              {(s.unread["@" + u.username] ?? 0) > 0 && (
                <span class="badge">{s.unread["@" + u.username]}</span>
              )}
              {u.away !== undefined && (
                <small class="away" data-testid={`away-${u.username}`}>away: {u.away}</small>
              )}
              {u.online && (
                <button
                  type="button"
                  class="small"
                  title="private session"
                  aria-label={`ask ${u.username} for a private session`}
                  onClick={() => send({ type: "session_request", target_username: u.username })}
                >
                  ⇄
                </button>
              )}
            </li>
          )
        )}
      </ul>
      <Away s={s} send={send} />
      <h2>Contacts</h2>
      <ul data-testid="contacts">
        {s.contacts.map((c) => (
          <li>
            <span class={c.online ? "dot on" : "dot"} />{" "}
            <button type="button" class="link" onClick={() => open("@" + c.username)}>
              {c.username}
            </button>
            <button
              type="button"
              class="small"
              aria-label={`remove ${c.username} from contacts`}
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
        <input name="contact" placeholder="add a contact" aria-label="add a contact" />
      </form>
      <h2>Scheduled</h2>
      <ul data-testid="scheduled">
        {s.scheduled.map((e) => (
          <li>
            {time(e.at)} {e.chat}: {e.message}
            <button
              type="button"
              class="small"
              aria-label="cancel this scheduled message"
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
        <input name="at" type="datetime-local" aria-label="when to send it" />
        <input name="text" placeholder="message for later" aria-label="message for later" />
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
        <input
          name="link"
          placeholder="invite link token"
          aria-label="join with an invite link token"
        />
      </form>
    </aside>
  );
}
