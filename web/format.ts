/**
 * How the console shows times and sizes.
 * @module
 */

/** An ISO time as local HH:MM. */
export function time(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** A byte count for people. */
export function size(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1048576
    ? `${(n / 1024).toFixed(1)} KB`
    : `${(n / 1048576).toFixed(1)} MB`;
}

/** An ISO time with its date, for people (local). */
export function dateTime(iso: string): string {
  const d = new Date(iso);
  return `${d.toLocaleDateString()} ${time(iso)}`;
}
