/**
 * What waits for the user's answer in the chat pane: session requests, invites, join requests,
 * and a group owner's tools.
 * @module
 */

import type { UpdatingProps } from "./chat.tsx";

/** The prompts above the messages. */
export function Prompts({ s, send, update }: UpdatingProps) {
  const me = s.me!.username;
  const room = s.rooms.find((r) => r.name === s.chat);
  const isOwner = room?.private && room.owner === me;
  return (
    <>
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
            data-testid="session-accept"
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
    </>
  );
}
