/**
 * What every HTTP handler shares: the Hono environment (the listener's connection info), the
 * caller's address and token, and the one token check.
 * @module
 */

import type { Context } from "hono";
import { type ClientFrame, type ClientFrameType } from "../../../protocol/frames.ts";
import { decodeClientValue } from "../../../protocol/decode.ts";
import { ChatError } from "../../core/errors.ts";
import type { Hub } from "../../core/hub.ts";
import type { ConnectionInfo } from "../http_server.ts";

/** The Hono environment: the listener (http_server.ts) passes its connection info; absent under app.request(). */
export type Env = { Bindings: Partial<ConnectionInfo> };

/** The caller's address ("" when unknown, as in-process tests). */
export function ipOf(c: Context<Env>): string {
  return c.env?.remoteAddr?.hostname ?? "";
}

/** The token from `Authorization: Bearer X`, `Authorization: X` (plain) or `?token=X`. */
export function tokenOf(c: Context<Env>): string | undefined {
  const header = c.req.header("authorization");
  if (header) return header.replace(/^Bearer\s+/i, "").trim();
  return c.req.query("token") ?? undefined;
}

/** The user the request's token belongs to; a missing, unknown or expired token is refused. */
export async function authenticate(hub: Hub, c: Context<Env>): Promise<string> {
  const token = tokenOf(c);
  if (!token) {
    throw new ChatError(
      "not_logged_in",
      "Send your token: Authorization: Bearer TOKEN (get one from POST /connect)",
    );
  }
  return await hub.authenticate(token);
}

/**
 * Builds a frame from a route's fields and checks it with the frame decoder, the one validator
 * of frames (the route's schemas have already named any REST field that is wrong).
 */
export function frame<T extends ClientFrameType>(
  type: T,
  fields: Record<string, unknown> = {},
): Extract<ClientFrame, { type: T }> {
  const decoded = decodeClientValue({ ...fields, type });
  if (!isType(decoded, type)) throw new TypeError(`decoded a ${decoded.type} as ${type}`);
  return decoded;
}

function isType<T extends ClientFrameType>(
  f: ClientFrame,
  type: T,
): f is Extract<ClientFrame, { type: T }> {
  return f.type === type;
}

/** A frame without its `type` and `ref`, as the REST answers show acks, notices and links. */
export function bare<F extends { type: string; ref?: string }>(f: F): Omit<F, "type" | "ref"> {
  const { type: _t, ref: _r, ...rest } = f;
  return rest;
}
