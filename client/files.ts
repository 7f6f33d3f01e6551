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

/**
 * One client's transfers: the names files were announced with (a download is saved under it),
 * and the HTTP access asked for once per connection (`forget` when the connection goes).
 */
export class FileTransfers {
  readonly #names = new Map<string, string>();
  readonly #ask: () => Promise<FileAccess>;
  #access: FileAccess | null = null;

  /** Transfers whose access comes from `ask` (the token frame, over the client's connection). */
  constructor(ask: () => Promise<FileAccess>) {
    this.#ask = ask;
  }

  /** Remembers the name of a file announced in a message. */
  note(file: { id: string; name: string }): void {
    this.#names.set(file.id, file.name);
  }

  /** The connection went: its token is asked for again on the next transfer. */
  forget(): void {
    this.#access = null;
  }

  /** Uploads a file to a room (`#room`) or a person (`@name`). */
  async upload(path: string, where: string): Promise<{ name: string; bytes: number }> {
    return await uploadFile(await this.#accessNow(), path, where);
  }

  /** Downloads a file into `folder`; returns where it was saved. */
  async download(id: string, folder: string): Promise<string> {
    return await downloadFile(await this.#accessNow(), id, this.#names.get(id), folder);
  }

  async #accessNow(): Promise<FileAccess> {
    return this.#access ??= await this.#ask();
  }
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
