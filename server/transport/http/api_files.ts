/**
 * Files: upload (streamed, refused as soon as it grows past the limit) and download.
 * @module
 */

import { z } from "zod";
import { ProtocolError } from "../../../protocol/frames.ts";
import { ChatError } from "../../core/errors.ts";
import { formatSize } from "../../core/hub.ts";
import { bare } from "./context.ts";
import { route, type RouteSpec } from "./route.ts";
import { Ack, chars, RoomName, Ulid, Username } from "./schemas.ts";

/** File routes. */
export const fileRoutes: RouteSpec[] = [
  route({
    method: "post",
    path: "/api/v1/files",
    tag: "files",
    summary:
      "Send a file (the raw body, up to --max-file-size) to a room (`room`, default general) or a user (`to`); it is announced as a message",
    auth: true,
    query: z.object({
      name: chars(1, 1000, { description: "the file's name (or an X-Filename header)" })
        .optional(),
      room: RoomName.optional(),
      to: Username.optional(),
    }),
    headers: [{ name: "X-Filename", description: "the file's name, URL-encoded" }],
    streamsBody: true,
    ok: { 201: { description: "stored and announced", schema: Ack } },
    errors: [404, 429, 503],
    async handle({ hub, user, ip, query, c }) {
      const declared = c.req.header("content-length");
      const size = declared === undefined ? undefined : Number(declared);
      // Too large is refused before the body is read: the declared length is enough.
      if (size !== undefined && size > hub.maxFileSize) {
        throw new ChatError(
          "too_long",
          `The file is ${formatSize(size)}; the limit is ${formatSize(hub.maxFileSize)}`,
        );
      }
      const name = query.name ?? decodeName(c.req.header("x-filename") ?? "");
      if (!name) {
        throw new ProtocolError(
          "missing_field",
          "Name the file: ?name=report.pdf (or an X-Filename header)",
        );
      }
      if (query.room !== undefined && query.to !== undefined) {
        throw new ProtocolError("bad_field", 'Give "room" or "to", not both');
      }
      const body = c.req.raw.body ??
        new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
      const ack = await hub.uploadFile(user, {
        name,
        mime: (c.req.header("content-type") ?? "application/octet-stream").split(";")[0]!.trim(),
        ip,
        ...(size === undefined ? {} : { size }),
        ...(query.room === undefined ? {} : { room: query.room }),
        ...(query.to === undefined ? {} : { to: query.to }),
      }, body);
      return c.json(bare(ack), 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/files/{id}",
    tag: "files",
    summary: "Download a file: its bytes with its type and name; members of its chat only",
    auth: true,
    params: z.object({ id: Ulid }),
    ok: { 200: { description: "the file's bytes", mediaType: "application/octet-stream" } },
    errors: [404],
    async handle({ hub, user, params }) {
      const { file, chunks } = await hub.openFile(user, params.id);
      const ascii = file.name.replace(/[^\x20-\x7e]|["\\]/g, "_");
      return new Response(ReadableStream.from(chunks), {
        headers: {
          "content-type": file.mime,
          "content-length": String(file.size),
          "content-disposition": `attachment; filename="${ascii}"; filename*=UTF-8''${
            encodeURIComponent(file.name)
          }`,
          "x-content-type-options": "nosniff",
        },
      });
    },
  }),
];

/** The X-Filename header is URL-encoded (headers are ASCII); a malformed one is refused. */
function decodeName(header: string): string {
  try {
    return decodeURIComponent(header);
  } catch {
    throw new ProtocolError("bad_field", "X-Filename must be URL-encoded (e.g. caf%C3%A9.txt)");
  }
}
