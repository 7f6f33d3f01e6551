/**
 * Files: stored in chunks under KV's value limit while they arrive (refused as soon as they
 * grow past the limit), then announced by a message in their chat.
 * @module
 */

import { validateRoomName } from "../../protocol/frames.ts";
import type { FileRecord } from "../store/store.ts";
import type { Core } from "./core.ts";
import { ChatError } from "./errors.ts";
import { dmId, formatSize } from "./format.ts";
import { canRead } from "./history.ts";
import { type AckFrame, postAs } from "./messages.ts";
import { checkCanSend } from "./moderation.ts";
import { GENERAL } from "./state.ts";

/** A media type as `type/subtype`, in the characters RFC 6838 allows. */
const MIME_RE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$/i;

/** File bytes are stored in chunks below KV's 64 KiB value limit. */
const FILE_CHUNK_BYTES = 60_000;

/** What an upload says about itself. */
export interface UploadMeta {
  name: string;
  mime: string;
  size?: number;
  room?: string;
  to?: string;
  /** The uploader's address (guests share a quota per address). */
  ip?: string;
}

function tooBig(core: Core, size: number): ChatError {
  return new ChatError(
    "too_long",
    `The file is ${formatSize(size)}; the limit is ${formatSize(core.config.maxFileSize)}`,
  );
}

/**
 * Stores a file sent to a room or a user, reading `chunks` as they come and refusing it as soon
 * as it grows past the limit, then announces it with a message. Returns the ack.
 */
export async function uploadFile(
  core: Core,
  username: string,
  meta: UploadMeta,
  chunks: AsyncIterable<Uint8Array>,
): Promise<AckFrame> {
  const u = core.users.get(username);
  if (!u) throw new ChatError("not_logged_in", "This account no longer exists: log in again");
  if (meta.size !== undefined && meta.size > core.config.maxFileSize) throw tooBig(core, meta.size);
  const name = meta.name.replace(/[\/\\\p{Cc}]/gu, "_").slice(0, 200) || "file";
  // Check where it goes before taking any bytes.
  let chat: string;
  if (meta.to !== undefined) {
    const to = core.requireUser(meta.to);
    if (to === u) throw new ChatError("bad_field", "You cannot send a file to yourself");
    chat = dmId(u.record.name, to.record.name);
  } else {
    chat = validateRoomName(meta.room ?? GENERAL);
    if (!core.requireRoom(chat, u).members.has(u)) {
      throw new ChatError("not_member", `You are not in #${chat}: /join ${chat} first`);
    }
  }
  const now = core.clock.now();
  // Every rule of sending (mute, quota) is checked before a byte is stored: a refused upload
  // must not fill the disk.
  checkCanSend(core, u, meta.to !== undefined, now, { peek: true, ip: meta.ip ?? "" });
  const id = core.newId(now);
  const expiresAt = core.config.messageTtlMs > 0 ? now + core.config.messageTtlMs : undefined;
  const { size, chunkCount } = await storeChunks(core, id, chunks, expiresAt);
  // The type is shown to others (and sent back on download): a plain type/subtype or nothing.
  const mime = MIME_RE.test(meta.mime) ? meta.mime.toLowerCase() : "application/octet-stream";
  const file = { id, name, size, mime };
  await core.store.putFile({
    ...file,
    chunks: chunkCount,
    chat,
    uploader: u.record.name,
    createdAt: now,
    ...(expiresAt === undefined ? {} : { expiresAt }),
  });
  const message = `sent a file: ${name} (${formatSize(size)}, ${file.mime})`;
  try {
    const where = meta.to !== undefined ? { to: meta.to } : { room: chat };
    return await postAs(core, u, where, message, { ip: meta.ip ?? "", extra: { file } });
  } catch (error) {
    // Refused at the last moment (the quota filled meanwhile): the bytes go too.
    await core.store.deleteFile(id).catch((e) => core.onError(e, "delete a refused file"));
    throw error;
  }
}

/** Writes a file's bytes in chunks; on any failure (too big, storage) deletes what was written. */
async function storeChunks(
  core: Core,
  id: string,
  chunks: AsyncIterable<Uint8Array>,
  expiresAt: number | undefined,
): Promise<{ size: number; chunkCount: number }> {
  let size = 0;
  let index = 0;
  const pending = new Uint8Array(FILE_CHUNK_BYTES);
  let fill = 0;
  const writes: Promise<void>[] = [];
  const flush = () => {
    if (fill === 0) return;
    writes.push(core.store.putFileChunk(id, index++, pending.slice(0, fill), expiresAt));
    fill = 0;
  };
  try {
    for await (const chunk of chunks) {
      size += chunk.length;
      if (size > core.config.maxFileSize) throw tooBig(core, size);
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(chunk.length - off, FILE_CHUNK_BYTES - fill);
        pending.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === FILE_CHUNK_BYTES) flush();
      }
    }
    flush();
    await Promise.all(writes);
  } catch (error) {
    await Promise.allSettled(writes);
    await core.store.deleteFile(id);
    throw error;
  }
  return { size, chunkCount: index };
}

/** Opens a file for a user who may read its chat; expired or unknown files are not found. */
export async function openFile(
  core: Core,
  username: string,
  id: string,
): Promise<{ file: FileRecord; chunks: AsyncIterable<Uint8Array> }> {
  const u = core.users.get(username);
  const file = await core.store.getFile(id);
  // A file of a chat the asker is not in is answered as one that does not exist.
  if (!file || core.expired(file) || !u || !canRead(u, file.chat)) {
    throw new ChatError("no_such_message", `There is no file ${id} (it may have expired)`);
  }
  return { file, chunks: core.store.readFile(id) };
}
