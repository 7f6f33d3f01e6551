/**
 * The web console: chat for everyone, and an admin view for admins. A client like any other:
 * it logs in over `/api/v1/session`, lives on `/ws`, and sends files over `/api/v1/files`.
 * Frames go through the pure `reduce` (state.ts); the follow-up requests it returns are sent
 * here. Imports `protocol/` only.
 * @module
 */

import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ClientFrame, ServerFrame } from "../protocol/frames.ts";
import { Admin } from "./admin.tsx";
import { Chat } from "./chat.tsx";
import { Connection } from "./connection.ts";
import { Login } from "./login.tsx";
import { initial, reduce, type State } from "./state.ts";

function App() {
  const [token, setToken] = useState<string | null>(sessionStorage.getItem("chat-token"));
  const [s, setS] = useState<State>(initial);
  const [view, setView] = useState<"chat" | "admin">("chat");
  const conn = useRef<Connection | null>(null);
  // The latest state, so frames that arrive between renders each see the one before them.
  const current = useRef<State>(initial);
  const commit = (next: State) => {
    current.current = next;
    setS(next);
  };
  const update = (fn: (s: State) => Partial<State>) =>
    commit({ ...current.current, ...fn(current.current) });

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
    // The reducer is pure; what it asks for is sent once the state is updated.
    const step = reduce(current.current, f);
    commit(step.state);
    for (const r of step.requests) send(r);
  }

  if (!token) return <Login onToken={setToken} />;
  if (!s.me) {
    // The chat's own layout, empty, so nothing jumps when it fills in (CLS).
    return (
      <div class="app">
        <header>
          <h1 class="brand">chat</h1>
          <span class="dot" title="connecting" />
        </header>
        <main class="chat">
          <aside />
          <section class="pane">
            <p class="loading">Connecting…</p>
          </section>
        </main>
      </div>
    );
  }
  const logout = async () => {
    await fetch("/api/v1/session", {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}` },
    });
    sessionStorage.removeItem("chat-token");
    conn.current?.close();
    commit(initial);
    setToken(null);
  };
  return (
    <div class="app">
      <header>
        <h1 class="brand">chat</h1>
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
        <div class="errors" role="alert" data-testid="errors">
          {s.errors.map((e, i) => <div key={i}>{e}</div>)}
          <button
            type="button"
            class="small"
            onClick={() => update(() => ({ errors: [] }))}
            aria-label="dismiss these errors"
          >
            ×
          </button>
        </div>
      )}
      {view === "chat"
        ? <Chat s={s} send={send} update={update} token={token} />
        : <Admin s={s} send={send} />}
    </div>
  );
}

render(<App />, document.getElementById("app")!);
