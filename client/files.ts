/**
 * The terminal client's file transfers: `/upload` and `/download` over the HTTP API, with the
 * token the TCP connection got (`{"type":"token"}`). Imports nothing of the server.
 * @module
 */

/** The HTTP API's address and a token for it. */
export interface FileAccess {
  /** `http://host:port` */
  base: string;
  token: string;
}

/** Uploads the file at `path` to a room (`room` or `#room`) or a person (`@name`). */
export async function uploadFile(
  access: FileAccess,
  path: string,
  where: string,
): Promise<{ name: string; bytes: number }> {
  const data = await Deno.readFile(path);
  const name = path.split("/").pop()!;
  const q = where.startsWith("@")
    ? `to=${encodeURIComponent(where.slice(1))}`
    : `room=${encodeURIComponent(where.replace(/^#/, ""))}`;
  const res = await fetch(`${access.base}/api/v1/files?${q}&name=${encodeURIComponent(name)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${access.token}`, "content-type": guessType(name) },
    body: data,
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error?.message ?? `upload failed (${res.status})`);
  return { name, bytes: data.length };
}

/**
 * Downloads a file into `folder` (made if missing), named as it was announced, else as the server
 * says, else by its id; made safe for a file name. Returns where it was saved.
 */
export async function downloadFile(
  access: FileAccess,
  id: string,
  knownName: string | undefined,
  folder: string,
): Promise<string> {
  const res = await fetch(`${access.base}/api/v1/files/${encodeURIComponent(id)}`, {
    headers: { authorization: `Bearer ${access.token}` },
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.error?.message ?? `download failed (${res.status})`);
  }
  const header = res.headers.get("content-disposition")?.match(/filename\*=UTF-8''([^;]+)/)?.[1];
  const name = safeName(knownName ?? (header ? decodeURIComponent(header) : id));
  await Deno.mkdir(folder, { recursive: true });
  const path = `${folder}/${name}`;
  await Deno.writeFile(path, new Uint8Array(await res.arrayBuffer()));
  return path;
}

function safeName(name: string): string {
  return name.replace(/[\/\\\p{Cc}]/gu, "_").replace(/^\.+/, "_") || "file";
}

function guessType(name: string): string {
  const ext = name.split(".").pop()?.toLowerCase() ?? "";
  const types: Record<string, string> = {
    txt: "text/plain",
    md: "text/markdown",
    json: "application/json",
    pdf: "application/pdf",
    png: "image/png",
    jpg: "image/jpeg",
    jpeg: "image/jpeg",
    gif: "image/gif",
    zip: "application/zip",
  };
  return types[ext] ?? "application/octet-stream";
}
