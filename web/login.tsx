/**
 * The login form: a name and a password; a new name registers.
 * @module
 */

import { useState } from "preact/hooks";

/** Logs in over REST and hands the token up. */
export function Login({ onToken }: { onToken: (token: string) => void }) {
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
    <main class="login-page">
      <form class="login" onSubmit={submit} data-testid="login">
        <h1>chat</h1>
        <p>Log in, or pick a new name and password to register.</p>
        <input
          name="username"
          placeholder="name"
          aria-label="name"
          autocomplete="username"
          required
          data-testid="login-name"
        />
        <input
          name="password"
          type="password"
          placeholder="password (6+ characters)"
          aria-label="password"
          autocomplete="current-password"
          required
          data-testid="login-password"
        />
        <button type="submit" data-testid="login-submit">Log in</button>
        {error && <p class="error" role="alert" data-testid="login-error">{error}</p>}
      </form>
    </main>
  );
}
