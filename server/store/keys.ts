/**
 * Every Deno KV key the store writes, in one place. A key starts with its collection,
 * then ids from broadest to narrowest. docs/architecture.md has the table.
 * @module
 */

/** Key builders for every collection. */
export const keys = {
  users: () => ["users"] as const,
  user: (name: string) => ["users", name] as const,
  chats: () => ["chats"] as const,
  chat: (id: string) => ["chats", id] as const,
  members: () => ["members"] as const,
  member: (chat: string, user: string) => ["members", chat, user] as const,
  seqs: () => ["chat_seq"] as const,
  seq: (chat: string) => ["chat_seq", chat] as const,
  messages: (chat: string) => ["messages", chat] as const,
  message: (chat: string, seq: number) => ["messages", chat, seq] as const,
  token: (hash: string) => ["tokens", hash] as const,
  userTokens: (user: string) => ["user_tokens", user] as const,
  userToken: (user: string, hash: string) => ["user_tokens", user, hash] as const,
  messageId: (id: string) => ["message_ids", id] as const,
  reports: () => ["reports"] as const,
  reportsOf: (target: string) => ["reports", target] as const,
  report: (target: string, reporter: string) => ["reports", target, reporter] as const,
  audits: () => ["audit"] as const,
  audit: (id: string) => ["audit", id] as const,
  lease: () => ["server_lease"] as const,
  cursors: (user: string) => ["cursors", user] as const,
  cursor: (user: string, chat: string) => ["cursors", user, chat] as const,
};
