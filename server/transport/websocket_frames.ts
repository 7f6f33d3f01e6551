/**
 * RFC 6455 frames, the server's side: the handshake's accept key, frames out (one encoding of a
 * text message shared by every reader it goes to), and a client frame's header read and checked
 * before its payload is. Used by `websocket.ts`.
 * @module
 */

import { createHash } from "node:crypto";

/** Close codes used here (RFC 6455 §7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  abnormal: 1006,
  invalidData: 1007,
  policy: 1008,
  tooBig: 1009,
} as const;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();

/** The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (no await, no thread hop). */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** Whether a Sec-WebSocket-Key is what RFC 6455 asks: 16 bytes in base64. */
export function validKey(key: string | null): key is string {
  return key !== null && /^[A-Za-z0-9+/]{22}==$/.test(key);
}

/** A server frame: FIN, opcode, unmasked length, payload. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = new Uint8Array(head + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) {
    frame[1] = n;
  } else if (n < 65536) {
    frame[1] = 126;
    frame[2] = n >>> 8;
    frame[3] = n & 0xff;
  } else {
    frame[1] = 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(n));
  }
  frame.set(payload, head);
  return frame;
}

/**
 * The frame for a text message. The fan-out hands the same joined string to every reader whose
 * queue matched, so the last one is kept: a room's 1,000 readers cost one encoding, not 1,000.
 */
let lastText = "";
let lastFrame = encodeFrame(1, new Uint8Array(0));
export function textFrame(text: string): Uint8Array {
  if (text !== lastText) {
    lastFrame = encodeFrame(1, encoder.encode(text));
    lastText = text;
  }
  return lastFrame;
}

export function closeFrame(code: number, reason: string): Uint8Array {
  const text = encoder.encode(reason);
  // A control frame's payload is at most 125 bytes: 2 for the code, 123 for the reason.
  const cut = text.length > 123 ? encoder.encode(truncateUtf8(reason, 123)) : text;
  const payload = new Uint8Array(2 + cut.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(cut, 2);
  return encodeFrame(8, payload);
}

function truncateUtf8(text: string, bytes: number): string {
  let out = "";
  let used = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (used + n > bytes) break;
    out += ch;
    used += n;
  }
  return out;
}

/** A close code a client may send (§7.4): the defined ones, and 3000-4999 for applications. */
export function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
    (code >= 3000 && code <= 4999);
}

/** Why the read loop stopped parsing: the close code and reason to send. */
export class Refusal {
  constructor(readonly code: number, readonly reason: string) {}
}

/** A frame's header: what it is, how long, and where its payload starts. */
export interface FrameHeader {
  fin: boolean;
  opcode: number;
  length: number;
  headerLength: number;
}

/**
 * Parses the frame header at `start`, or null when it is not all in yet. The mask key is the
 * header's last 4 bytes. Refuses what RFC 6455 forbids a client: reserved bits (no extension was
 * agreed), unknown opcodes, unmasked frames, fragmented or long control frames.
 */
export function parseHeader(
  buf: Uint8Array,
  start: number,
  end: number,
): FrameHeader | Refusal | null {
  if (end - start < 2) return null;
  const b0 = buf[start]!;
  const b1 = buf[start + 1]!;
  const fin = (b0 & 0x80) !== 0;
  const opcode = b0 & 0x0f;
  if ((b0 & 0x70) !== 0) return new Refusal(CLOSE.protocolError, "reserved bits set");
  if ((opcode > 2 && opcode < 8) || opcode > 10) {
    return new Refusal(CLOSE.protocolError, `unknown opcode ${opcode}`);
  }
  if ((b1 & 0x80) === 0) return new Refusal(CLOSE.protocolError, "client frames must be masked");
  let length = b1 & 0x7f;
  let headerLength = 2;
  if (length === 126) {
    if (end - start < 4) return null;
    length = (buf[start + 2]! << 8) | buf[start + 3]!;
    headerLength = 4;
  } else if (length === 127) {
    if (end - start < 10) return null;
    const high = (buf[start + 2]! << 24 >>> 0) + (buf[start + 3]! << 16) +
      (buf[start + 4]! << 8) + buf[start + 5]!;
    const low = ((buf[start + 6]! << 24) >>> 0) + (buf[start + 7]! << 16) +
      (buf[start + 8]! << 8) + buf[start + 9]!;
    if (high >= 0x200000) return new Refusal(CLOSE.protocolError, "frame length out of range");
    length = high * 2 ** 32 + low;
    headerLength = 10;
  }
  if (opcode >= 8 && (!fin || length > 125)) {
    return new Refusal(CLOSE.protocolError, "control frames are short and whole");
  }
  headerLength += 4;
  if (end - start < headerLength) return null;
  return { fin, opcode, length, headerLength };
}

/** Unmasks a payload in place with the 4-byte key at `keyAt`. */
export function unmask(payload: Uint8Array, buf: Uint8Array, keyAt: number): void {
  const k0 = buf[keyAt]!, k1 = buf[keyAt + 1]!, k2 = buf[keyAt + 2]!, k3 = buf[keyAt + 3]!;
  const n = payload.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    payload[i]! ^= k0;
    payload[i + 1]! ^= k1;
    payload[i + 2]! ^= k2;
    payload[i + 3]! ^= k3;
  }
  const key = [k0, k1, k2, k3];
  for (; i < n; i++) payload[i]! ^= key[i & 3]!;
}
