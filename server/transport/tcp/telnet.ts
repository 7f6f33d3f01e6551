/**
 * The little of telnet the text mode speaks: stripping negotiation from input, the
 * TIMING-MARK probe that serves as a heartbeat for telnet programs, and its answer.
 * @module
 */

/** "Interpret as command": starts every telnet sequence. 0xFF never occurs in UTF-8. */
export const IAC = 0xff;
const DO = 253;
const WILL = 251;
const WONT = 252;
const TIMING_MARK = 6;

const ECHO = 1;

/** IAC WILL ECHO: "I echo, you don't" — telnet clients stop showing what is typed (RFC 857). */
export const ECHO_OFF = new Uint8Array([IAC, WILL, ECHO]);
/** IAC WONT ECHO: the client shows what is typed again. */
export const ECHO_ON = new Uint8Array([IAC, WONT, ECHO]);

/** IAC DO TIMING-MARK: "tell me you are there" in telnet (RFC 860). */
export const TIMING_MARK_PROBE = new Uint8Array([IAC, DO, TIMING_MARK]);

/** Whether `bytes` hold a telnet client's answer to a TIMING-MARK probe (IAC WILL/WONT TM). */
export function answersTimingMark(bytes: Uint8Array): boolean {
  for (let i = bytes.indexOf(IAC); i >= 0 && i < bytes.length - 2; i = bytes.indexOf(IAC, i + 1)) {
    const cmd = bytes[i + 1];
    if ((cmd === WILL || cmd === WONT) && bytes[i + 2] === TIMING_MARK) return true;
  }
  return false;
}

/**
 * Removes telnet negotiation (IAC sequences). 0xFF never occurs in UTF-8, so this is safe on
 * JSON lines too.
 */
export function stripTelnet(bytes: Uint8Array): Uint8Array {
  if (!bytes.includes(IAC)) return bytes;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== IAC) {
      out.push(b);
      continue;
    }
    const cmd = bytes[i + 1];
    if (cmd === IAC) {
      i++;
    } else if (cmd !== undefined && cmd >= 251 && cmd <= 254) {
      i += 2;
    } else if (cmd === 250) {
      // Subnegotiation runs to IAC SE.
      let j = i + 2;
      while (j < bytes.length - 1 && !(bytes[j] === IAC && bytes[j + 1] === 240)) j++;
      i = j + 1;
    } else {
      i++;
    }
  }
  return new Uint8Array(out);
}
