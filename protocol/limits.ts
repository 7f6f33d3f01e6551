/**
 * Every size and count limit of the chat, in one place, shared by server, client and console.
 * @module
 */

/** Longest line (JSON frame or text command) a TCP peer may send, in bytes; longer closes the connection. */
export const MAX_LINE_BYTES = 64 * 1024;
/** Longest chat message, in characters. */
export const MAX_MESSAGE_CHARS = 4_000;
/** Longest user or room name, in characters. */
export const MAX_NAME_CHARS = 32;
/** Shortest password accepted by `register`. */
export const MIN_PASSWORD_CHARS = 6;
/** Longest password accepted, in characters (the KDF input stays bounded). */
export const MAX_PASSWORD_CHARS = 256;
/** Longest client correlation id (`ref`). */
export const MAX_REF_CHARS = 64;
/** Most messages one history or unread page returns. */
export const MAX_PAGE = 200;
/** Most names one `users` lookup (`usernames`, IRC's ISON) asks about. */
export const MAX_LOOKUP_NAMES = 100;
/** Most unread messages replayed per chat on reconnect; the rest stay reachable by paging. */
export const MAX_UNREAD_REPLAY = 200;
/**
 * Bytes queued for one connection before it is dropped as too slow. One store commit can
 * deliver up to ~1 MiB to a connection in a single tick (a batch holds at most 512 KiB of
 * message text, JSON adds escaping), so the bound sits well above that burst. Queued frames
 * share their encoded bytes across connections, so this is a bound, not a per-reader cost.
 */
export const MAX_OUTBOUND_BYTES = 4 * 1024 * 1024;
/**
 * The heartbeat (`--heartbeat`): silence on a logged-in connection before the server checks on
 * it. TCP JSON gets a `ping` and telnet clients a TIMING-MARK at 1 and 2 beats of silence,
 * WebSockets a ping frame at 1.5; a peer silent for 3 beats that has answered before (WebSocket:
 * any) is closed, so with 15 s presence is right within a minute. SSE streams get a comment each
 * beat.
 */
export const HEARTBEAT_MS = 15_000;
/** How long a TCP connection may take to log in before it is closed (slowloris, idle sockets). */
export const LOGIN_TIMEOUT_MS = 60_000;
/** How long a TCP peer may stay silent before its first line, before the server greets it as a person. */
export const TEXT_GREETING_DELAY_MS = 800;
/** Failed logins allowed per account in LOGIN_WINDOW_MS before further tries wait. */
export const MAX_FAILED_LOGINS_PER_ACCOUNT = 5;
/** Failed logins allowed per IP address in LOGIN_WINDOW_MS. */
export const MAX_FAILED_LOGINS_PER_IP = 20;
/** The window failed logins are counted in. */
export const LOGIN_WINDOW_MS = 15 * 60_000;
/** Rooms (public or private) one user may be a member of. */
export const MAX_ROOMS_PER_USER = 200;
/** Rooms a user (not an admin) may create per hour, by default (--rooms-per-hour). */
export const ROOMS_CREATED_PER_HOUR = 10;
/** Default limit of simultaneous connections from one IP address (`--max-connections-per-ip`). */
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
