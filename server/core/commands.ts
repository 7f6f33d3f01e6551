/**
 * The command table: every frame type a client may send, with its handler and the
 * preconditions checked once here (logged in, admin only, pipelined), and the two ways in:
 * `dispatch` for a live connection (answers go out through its `Reply`, stamped with the
 * frame's `ref`) and `runAs` for a request without a connection (REST), which returns the
 * typed answer or throws the `ChatError`.
 * @module
 */

import type { ClientFrame, ClientFrameType, ServerFrame } from "../../protocol/frames.ts";
import * as admin from "./admin.ts";
import { attach, quitCommand } from "./attach.ts";
import {
  authCommand,
  challengeCommand,
  helloCommand,
  registerCommand,
  tokenCommand,
} from "./auth.ts";
import {
  type Call,
  connectionlessCall,
  Pending,
  Reply,
  type Settled,
  type UserCall,
} from "./call.ts";
import { changeContactCommand, contactsCommand } from "./contacts.ts";
import type { Core } from "./core.ts";
import { loadCursors, release, use, whileBusy } from "./cursors.ts";
import { ChatError } from "./errors.ts";
import * as groups from "./groups.ts";
import { historyCommand, repliesCommand, unreadCommand, unreadCountsCommand } from "./history.ts";
import { messageCommand, privateCommand } from "./messages.ts";
import { checkNotBanned, deleteMessageCommand, reportCommand } from "./moderation.ts";
import { joinCommand, leaveCommand, membersCommand, roomsCommand } from "./rooms.ts";
import { cancelScheduledCommand, scheduleCommand, scheduledListCommand } from "./scheduled.ts";
import { sessionEndCommand, sessionRequestCommand, sessionResponseCommand } from "./sessions.ts";
import type { Conn, UserState } from "./state.ts";
import { awayCommand } from "./away.ts";
import { statusCommand, usersCommand } from "./views.ts";

/** An answer that comes later, whatever frame it is (`Pending` is one). */
interface Later {
  readonly done: Promise<ServerFrame>;
  /** Settles once `done` does, either way. */
  readonly settled: Promise<void>;
  listen(listener: (result: Settled<ServerFrame>) => void): void;
}

/** What a handler gives back: the answer, an answer that comes later, or nothing. */
type Answer = ServerFrame | Later | void;

/** A table entry: the handler and when it may run. */
interface Command<F, C extends Call> {
  /** Needs a logged-in user (the handler gets a `UserCall`). */
  readonly login: boolean;
  /** Only admins may run it. */
  readonly admin: boolean;
  /**
   * Runs without waiting for this connection's messages still being stored (messages are
   * stored in batches and pipeline); every other command answers after them, in order.
   */
  readonly pipelined: boolean;
  readonly run: (call: C, frame: F) => Answer | Promise<Answer>;
}

function open<F, A extends Answer>(run: (call: Call, frame: F) => A | Promise<A>) {
  return { login: false, admin: false, pipelined: false, run } as const;
}
function user<F, A extends Answer>(run: (call: UserCall, frame: F) => A | Promise<A>) {
  return { login: true, admin: false, pipelined: false, run } as const;
}
function pipelined<F, A extends Answer>(run: (call: UserCall, frame: F) => A | Promise<A>) {
  return { login: true, admin: false, pipelined: true, run } as const;
}
function adminOnly<F, A extends Answer>(run: (call: UserCall, frame: F) => A | Promise<A>) {
  return { login: true, admin: true, pipelined: false, run } as const;
}

/** Every command, by frame type. */
const COMMANDS = {
  ping: open((call) => ({ type: "pong" as const, timestamp: call.core.ts() })),
  // The answer to a heartbeat: the transport has already seen it arrive, nothing else to do.
  pong: open(() => undefined),
  hello: open(helloCommand),
  quit: open(quitCommand),
  challenge: open(challengeCommand),
  auth: open(authCommand),
  register: user(registerCommand),
  token: user(tokenCommand),
  message: pipelined(messageCommand),
  private: pipelined(privateCommand),
  replies: user(repliesCommand),
  history: user(historyCommand),
  unread: user(unreadCommand),
  unread_counts: user(unreadCountsCommand),
  schedule: user(scheduleCommand),
  scheduled: user(scheduledListCommand),
  cancel_scheduled: user(cancelScheduledCommand),
  join: user((call, frame: { room: string }) => joinCommand(call, frame)),
  leave: user(leaveCommand),
  members: user(membersCommand),
  rooms: user(roomsCommand),
  users: user(usersCommand),
  status: user(statusCommand),
  away: user(awayCommand),
  session_request: user(sessionRequestCommand),
  session_response: user(sessionResponseCommand),
  session_end: user(sessionEndCommand),
  create_group: user(groups.createGroupCommand),
  invite: user(groups.inviteCommand),
  invite_response: user(groups.inviteResponseCommand),
  create_link: user(groups.createLinkCommand),
  revoke_link: user(groups.revokeLinkCommand),
  join_link: user(groups.joinLinkCommand),
  join_decision: user(groups.joinDecisionCommand),
  remove_member: user(groups.removeMemberCommand),
  contacts: user(contactsCommand),
  add_contact: user(changeContactCommand),
  remove_contact: user(changeContactCommand),
  report: user(reportCommand),
  delete_message: user(deleteMessageCommand),
  kick: adminOnly(admin.kickCommand),
  mute: adminOnly(admin.muteCommand),
  unmute: adminOnly(admin.unmuteCommand),
  ban: adminOnly(admin.banCommand),
  unban: adminOnly(admin.unbanCommand),
  connections: adminOnly(admin.connectionsCommand),
  clients: adminOnly(admin.clientsCommand),
  audit: adminOnly(admin.auditCommand),
  reports: adminOnly(admin.reportsCommand),
  stats: adminOnly(admin.statsCommand),
  log_subscribe: adminOnly(admin.logSubscribeCommand),
  log_search: adminOnly(admin.logSearchCommand),
  create_user: adminOnly(admin.createUserCommand),
} satisfies {
  [T in ClientFrameType]: Command<Extract<ClientFrame, { type: T }>, UserCall>;
};

function isPending(answer: Answer): answer is Later {
  return answer instanceof Pending;
}

type Unpend<A> = A extends Pending<infer F> ? F : A;

/** The answer a command gives a REST caller, by frame type. */
export type AnswerOf<T extends ClientFrameType> = Unpend<
  Awaited<ReturnType<(typeof COMMANDS)[T]["run"]>>
>;

/** The table entry of a decoded frame (its fields were checked by the frame decoder). */
function commandOf(frame: ClientFrame): Command<ClientFrame, Call> {
  return COMMANDS[frame.type] as unknown as Command<ClientFrame, Call>;
}

function checkPreconditions(
  command: Command<ClientFrame, Call>,
  u: UserState | null,
  type: string,
): void {
  if (command.login && !u) {
    throw new ChatError("not_logged_in", 'Say who you are first: {"username":"YourName"}');
  }
  if (command.admin && !u?.record.admin) {
    throw new ChatError("forbidden", `Only admins can use "${type}"`);
  }
}

function shuttingDown(): ChatError {
  return new ChatError("internal", "The server is shutting down: reconnect in a moment");
}

/** Runs one frame of a live connection; its answers go to the connection with the frame's `ref`. */
export async function dispatch(core: Core, conn: Conn, frame: ClientFrame): Promise<void> {
  if (conn.closed) return;
  const reply = new Reply(core, conn, frame.ref);
  try {
    if (core.closing) throw shuttingDown();
    const command = commandOf(frame);
    if (!command.pipelined && conn.lastPost) await conn.lastPost.settled;
    const u = conn.user;
    checkPreconditions(command, u, frame.type);
    const call: Call = { core, user: u, conn, view: conn, ip: conn.peer.ip, reply, after: [] };
    let answer: Answer;
    if (u) {
      // whileBusy, written out: one frame fewer for every command of a logged-in user.
      use(core, u);
      try {
        answer = await command.run(call, frame);
      } finally {
        release(core, u);
      }
    } else answer = await command.run(call, frame);
    if (isPending(answer)) return awaitAck(conn, reply, answer);
    if (answer) reply.send(answer);
    for (const f of call.after) core.sendTo(conn, f);
  } catch (error) {
    reply.fail(error);
  }
}

/**
 * Messages one connection may have waiting for their commit before its frames stop being
 * taken: a client pipelining thousands of messages (an import, a flood with quotas off) would
 * otherwise have all of them parsed and queued at once, holding their memory and the event
 * loop while the commits that answer them wait. Transports that await `Hub.receive` (TCP,
 * telnet, JIM, IRC) stop reading until half the window is acked; TCP's own flow control then
 * slows the client. Measured at ingest (8 clients sending 5,000 each): without it the first
 * commits waited 80-200 ms behind parsing.
 */
export const POST_WINDOW = 256;

/** Acks a message once stored; meanwhile the connection's other commands wait (`lastPost`). */
function awaitAck(conn: Conn, reply: Reply, pending: Later): void {
  conn.lastPost = pending;
  conn.posting++;
  // All in the listener, called as the message is settled: no promise per message.
  pending.listen((result) => {
    if (result.ok) reply.send(result.value);
    else reply.fail(result.error);
    conn.posting--;
    if (conn.lastPost === pending) conn.lastPost = null;
    if (conn.postingLow !== null && conn.posting <= POST_WINDOW / 2) {
      const wake = conn.postingLow;
      conn.postingLow = null;
      wake();
    }
  });
}

/**
 * Null when the connection may send more now; otherwise a promise that settles once half of
 * its window of messages waiting for their commit has been acked (`POST_WINDOW`).
 */
export function roomToPost(conn: Conn): Promise<void> | null {
  if (conn.posting < POST_WINDOW) return null;
  return new Promise((resolve) => {
    const earlier = conn.postingLow;
    conn.postingLow = () => {
      earlier?.();
      resolve();
    };
  });
}

/**
 * Runs one command for a user without a live connection (REST) and returns its answer once
 * done (a message's once stored); a refusal is thrown as a `ChatError`.
 */
export async function runAs<T extends ClientFrameType>(
  core: Core,
  u: UserState,
  frame: Extract<ClientFrame, { type: T }>,
  ip: string,
): Promise<AnswerOf<T>> {
  if (frame.type === "hello" || frame.type === "auth" || frame.type === "challenge") {
    throw new ChatError("bad_frame", "Requests are already authenticated by their token");
  }
  if (core.closing) throw shuttingDown();
  const command = commandOf(frame);
  checkPreconditions(command, u, frame.type);
  return await whileBusy(core, u, async () => {
    await loadCursors(core, u);
    const answer = await command.run(connectionlessCall(core, u, ip), frame);
    // The table's types say which answer each frame type gives.
    return (isPending(answer) ? await answer.done : answer) as AnswerOf<T>;
  });
}

/**
 * Logs a live connection in as a user whose token the transport has already checked (the
 * HTTP layer, once), resuming after `since` if given; a refusal goes to the connection.
 */
export async function attachChecked(
  core: Core,
  conn: Conn,
  u: UserState,
  since: string | undefined,
  token: string | null,
): Promise<void> {
  if (conn.closed) return;
  conn.token = token;
  const reply = new Reply(core, conn, undefined);
  try {
    if (core.closing) throw shuttingDown();
    checkNotBanned(core, u);
    const call: Call = { core, user: null, conn, view: conn, ip: conn.peer.ip, reply, after: [] };
    await attach(call, u, since);
  } catch (error) {
    reply.fail(error);
  }
}
