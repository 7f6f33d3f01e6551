/**
 * A JIM client (seed 004), written from the assignment's description, against the real server:
 * it logs in with the challenge (the password never crosses the wire), exchanges messages with a
 * WebSocket user, learns a contact is offline, manages contacts, lists users and exits. Objects
 * go out back to back without newlines, as the course's clients send them.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac, scrypt } from "node:crypto";
import { tokenFor, withServer, WsClient } from "./_helpers.ts";

type Jim = Record<string, unknown>;

/** A raw-socket JIM client. */
class JimClient {
  readonly received: Jim[] = [];
  #conn: Deno.Conn;
  #rest = "";
  #reading: Promise<void>;
  closed = false;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reading = this.#read();
  }

  static async connect(port: number): Promise<JimClient> {
    return new JimClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #read(): Promise<void> {
    const dec = new TextDecoder();
    try {
      for await (const chunk of this.#conn.readable) {
        this.#rest += dec.decode(chunk, { stream: true });
        // Objects may come back to back: take each complete one.
        let depth = 0, start = 0, inString = false, esc = false;
        for (let i = 0; i < this.#rest.length; i++) {
          const c = this.#rest[i]!;
          if (inString) {
            if (esc) esc = false;
            else if (c === "\\") esc = true;
            else if (c === '"') inString = false;
          } else if (c === '"') inString = true;
          else if (c === "{" && depth++ === 0) start = i;
          else if (c === "}" && --depth === 0) {
            this.received.push(JSON.parse(this.#rest.slice(start, i + 1)));
            this.#rest = this.#rest.slice(i + 1);
            i = -1;
          }
        }
      }
    } catch { /* closed */ }
    this.closed = true;
  }

  send(obj: Jim): Promise<number> {
    return this.#conn.write(new TextEncoder().encode(JSON.stringify(obj)));
  }

  /** Waits for the next received object matching `test`, taking it. */
  async next(test: (o: Jim) => boolean, what: string): Promise<Jim> {
    for (let i = 0; i < 250; i++) {
      const at = this.received.findIndex(test);
      if (at >= 0) return this.received.splice(at, 1)[0]!;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no ${what}; got ${JSON.stringify(this.received)}`);
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* closed */ }
    await this.#reading;
  }
}

/** The key the server's hash holds, derived from the password as the challenge says. */
function proof(password: string, challenge: Jim): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(
      password,
      Buffer.from(String(challenge.salt), "base64"),
      Number(challenge.key_bytes),
      { N: Number(challenge.N), r: Number(challenge.r), p: Number(challenge.p), maxmem: 1 << 30 },
      (err, key) => {
        if (err) return reject(err);
        resolve(createHmac("sha256", key).update(String(challenge.bin)).digest("base64"));
      },
    );
  });
}

Deno.test("jim: a seed-004 client logs in by challenge, chats with a WebSocket user, hears 'client not online', manages contacts and exits", async () => {
  await using server = await withServer();
  // The admin registers clients (seed 004); here an open server registers on first login.
  await tokenFor(server.base, "Jimmy");
  await tokenFor(server.base, "Offline");
  const web = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  web.send({ type: "hello", username: "Wanda" });
  await web.until(() => web.frames.some((f) => f.type === "welcome"), "Wanda's welcome");

  const jim = await JimClient.connect(server.tcpPort);
  await jim.send({
    action: "presence",
    time: Date.now() / 1000,
    user: { account_name: "Jimmy", status: "online" },
  });
  const challenge = await jim.next((o) => o.response === 511, "the 511 challenge");
  assert.equal(challenge.kdf, "scrypt");
  assert.equal(typeof challenge.bin, "string");
  // A wrong password is refused, and a new presence asks again.
  await jim.send({ response: 511, bin: await proof("not-the-password", challenge) });
  assert.equal((await jim.next((o) => o.response === 400, "the refusal")).response, 400);
  await jim.send({ action: "presence", time: Date.now() / 1000, user: { account_name: "Jimmy" } });
  const again = await jim.next((o) => o.response === 511, "a second challenge");
  await jim.send({ response: 511, bin: await proof("Jimmy-password", again) });
  await jim.next((o) => o.response === 200, "the 200 of the login");

  // JIM → WebSocket, and back.
  await jim.send({
    action: "msg",
    time: Date.now() / 1000,
    from: "Jimmy",
    to: "Wanda",
    message: "hi Wanda",
  });
  await jim.next((o) => o.response === 200, "the 200 of the message");
  await web.until(
    () => web.frames.some((f) => f.type === "private" && f.message === "hi Wanda"),
    "Wanda gets it",
  );
  web.send({ type: "private", target_username: "Jimmy", message: "hello JIM" });
  const incoming = await jim.next((o) => o.action === "msg", "Wanda's message");
  assert.deepEqual([incoming.from, incoming.to, incoming.message], ["Wanda", "Jimmy", "hello JIM"]);
  assert.equal(typeof incoming.time, "number");

  // To someone offline: stored, and the sender is told.
  await jim.send({ action: "msg", time: 0, from: "Jimmy", to: "Offline", message: "later" });
  const notOnline = await jim.next((o) => o.response === 400, "client not online");
  assert.equal(notOnline.error, "client not online");

  // Contacts: Wanda came by messaging; add and remove one; list users.
  await jim.send({ action: "get_contacts", time: 0, user_login: "Jimmy" });
  const contacts = await jim.next((o) => o.response === 202, "the contacts");
  assert.deepEqual((contacts.data_list as string[]).sort(), ["Offline", "Wanda"]);
  await jim.send({ action: "add", time: 0, user_id: "Wanda", user_login: "Jimmy" });
  await jim.next((o) => o.response === 200, "added");
  await jim.send({ action: "del", time: 0, user_id: "Offline", user_login: "Jimmy" });
  await jim.next((o) => o.response === 200, "removed");
  await jim.send({ action: "get_contacts", time: 0 });
  assert.deepEqual((await jim.next((o) => o.response === 202, "contacts")).data_list, ["Wanda"]);
  await jim.send({ action: "get_users", time: 0 });
  const users = (await jim.next((o) => o.response === 202, "users")).data_list as string[];
  for (const name of ["Jimmy", "Offline", "Wanda"]) assert.ok(users.includes(name), name);

  // The offline user gets the message on login, on any wire.
  const later = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  later.send({ type: "hello", username: "Offline", password: "Offline-password" });
  await later.until(
    () => JSON.stringify(later.frames).includes('"message":"later"'),
    "the stored message",
  );

  await jim.send({ action: "exit", time: 0 });
  for (let i = 0; i < 100 && !jim.closed; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(jim.closed, true, "exit ends the connection");
  await jim.close();
  await web.close();
  await later.close();
});
