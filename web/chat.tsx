/**
 * The chat view: rooms, people, contacts and scheduled messages on the side; prompts, the
 * messages of the open chat and the composer in the pane.
 * @module
 */

import { useEffect, useRef, useState } from "preact/hooks";
import type { ClientFrame, MessageFrame } from "../protocol/frames.ts";
import { Prompts } from "./chat_prompts.tsx";
import { Sidebar } from "./chat_sidebar.tsx";
import { size, time } from "./format.ts";
import type { State } from "./state.ts";

/** What every view gets. */
export interface ViewProps {
  s: State;
  send: (f: ClientFrame) => void;
}

/** Views that change local state too (the open chat, dismissed prompts). */
export interface UpdatingProps extends ViewProps {
  update: (fn: (s: State) => Partial<State>) => void;
}

/** The chat tab. */
export function Chat(
  { s, send, update, token }: UpdatingProps & { token: string },
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
  // Fetched with the token in a header, never in a URL; saved from a blob.
  const download = async (id: string, name: string) => {
    const res = await fetch(`/api/v1/files/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({ error: { message: res.statusText } }));
      return update((st) => ({ errors: [...st.errors, body.error.message] }));
    }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
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
  return (
    <main class="chat">
      <Sidebar s={s} send={send} open={open} />
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
        <div class="pane-head">
          <h2 data-testid="chat-title">
            {s.chat.startsWith("@") ? `Private: ${s.chat.slice(1)}` : `#${s.chat}`}
          </h2>
          {s.chat !== "general" && s.rooms.some((r) => r.name === s.chat && r.joined) && (
            <button
              type="button"
              class="small"
              onClick={() => send({ type: "leave", room: s.chat })}
              aria-label={`leave #${s.chat}`}
              data-testid="leave"
            >
              Leave
            </button>
          )}
        </div>
        <Prompts s={s} send={send} update={update} />
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
            <li data-testid="message" class={m.notice ? "notice" : undefined}>
              <time>{time(m.timestamp)}</time> <b>{m.from_username}</b>
              {m.reply_to && (
                <span class="reply">↪ {m.reply_to.from_username}: {m.reply_to.message}</span>
              )}
              <span class="text">{m.message}</span>
              {m.file && (
                <a
                  class="file"
                  href={`/api/v1/files/${m.file.id}`}
                  download={m.file.name}
                  onClick={(e) => {
                    e.preventDefault();
                    void download(m.file!.id, m.file!.name);
                  }}
                  data-testid="file-link"
                >
                  ↓ {m.file.name} ({size(m.file.size)})
                </a>
              )}
              <span class="actions">
                <button
                  type="button"
                  class="small"
                  onClick={() => setReplyTo(m)}
                  aria-label={`reply to ${m.from_username}`}
                >
                  reply
                </button>
                {(m.from_username === me || s.me!.admin) && (
                  <button
                    type="button"
                    class="small"
                    onClick={() => send({ type: "delete_message", id: m.id })}
                    aria-label={`delete ${m.from_username}'s message`}
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
            <button
              type="button"
              class="small"
              onClick={() => setReplyTo(null)}
              aria-label="do not reply"
            >
              ×
            </button>
          </div>
        )}
        <form class="composer" onSubmit={submit}>
          <input
            name="text"
            placeholder={`Message ${s.chat.startsWith("@") ? s.chat : "#" + s.chat}`}
            autocomplete="off"
            aria-label="message"
            data-testid="composer"
          />
          <label class="upload">
            Attach<input
              class="sr"
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
