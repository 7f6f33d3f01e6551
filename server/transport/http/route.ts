/**
 * One declaration per HTTP route: its method, path, input schemas (path, query, body) and
 * every status it can answer, with zod schemas. `mount` registers the declarations on a Hono
 * app, validating input on the way in (schema errors become the same error codes and
 * readable messages as frames, naming REST fields); `openApiDocument` generates the OpenAPI
 * 3.1 document from the same declarations, so the two cannot drift.
 *
 * Why not `@hono/zod-openapi`'s `openapi()`: its body validator answers 415 to a JSON body
 * sent without `Content-Type: application/json` (`curl -d` sends form encoding), which the
 * documented curl examples and older clients rely on, and it reads bodies without our byte
 * limit. This layer is the part of it we need: zod in, zod-generated document out.
 * @module
 */

import type { Context, Hono } from "hono";
import { z } from "zod";
import { type ErrorCode, ProtocolError } from "../../../protocol/frames.ts";
import { MAX_LINE_BYTES } from "../../../protocol/limits.ts";
import type { Hub } from "../../core/hub.ts";
import { authenticate, type Env, ipOf, tokenOf } from "./context.ts";

/** What each status means, in the document. */
const STATUS_TEXT: Record<number, string> = {
  400: "bad input: the error names the field and what it must be",
  401: "missing, unknown or expired token; wrong password",
  403: "not allowed (not a member, muted, banned, admins only, ...)",
  404: "no such user, room, message or request",
  405: "the path (a parameter of . or .. resolves to another) takes other methods: see Allow",
  408: "the request body stopped arriving (--header-timeout); the connection is closed",
  409: "conflict (name taken, already in a session)",
  413: "body, message or file too long",
  429: "rate limited: the error says when to try again",
  503: "not stored or not available right now: try again",
};

type Method = "get" | "post" | "put" | "delete";

/** A success response: its schema (JSON), or a media type and description for other bodies. */
export interface Success {
  description: string;
  schema?: z.ZodType;
  mediaType?: string;
}

/** The validated input a handler gets. */
export interface Input<P, Q, B> {
  c: Context<Env>;
  hub: Hub;
  /** The logged-in user (routes with `auth`), else "". */
  user: string;
  token: string;
  ip: string;
  params: P;
  query: Q;
  body: B;
}

/** A route, declared once. */
export interface RouteSpec<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
> {
  method: Method;
  /** The path with `{param}` placeholders, as in the document. */
  path: string;
  tag: string;
  summary: string;
  /** Needs a token (adds 401 and 403 for banned accounts). */
  auth?: boolean;
  params?: P;
  query?: Q;
  /** A JSON body; `bodyOptional` accepts an empty one as `{}`. */
  body?: B;
  bodyOptional?: boolean;
  /** The handler reads the raw body itself, as a stream (file uploads). */
  streamsBody?: boolean;
  /** Extra documentation of the parameters the schemas do not carry (headers). */
  headers?: Array<{ name: string; description: string }>;
  /** Success responses by status. */
  ok: Record<number, Success>;
  /** Refusals besides the ones the declaration implies (input → 400, body → 408/413, auth). */
  errors?: number[];
  handle(input: Input<z.output<P>, z.output<Q>, z.output<B>>): Response | Promise<Response>;
}

/** Declares a route (a typed identity: the handler's input follows the schemas). */
export function route<
  P extends z.ZodType = z.ZodObject,
  Q extends z.ZodType = z.ZodObject,
  B extends z.ZodType = z.ZodObject,
>(spec: RouteSpec<P, Q, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

/** Every status a route can answer: its successes, its refusals and the implied ones. */
function statusesOf(spec: RouteSpec): { ok: number[]; errors: number[] } {
  const errors = new Set(spec.errors ?? []);
  if (spec.params || spec.query || spec.body) errors.add(400);
  // An empty path parameter makes a path no route serves; `.` or `..` (which URLs resolve) makes
  // another path, which may be another route's, with other methods (405).
  if (spec.params) errors.add(404).add(405);
  if (spec.body || spec.method === "post" || spec.method === "put") {
    // Any request may carry a body: it can be too long, or stall (http_server.ts's deadline).
    errors.add(408).add(413);
  }
  if (spec.auth) errors.add(401).add(403);
  return {
    ok: Object.keys(spec.ok).map(Number),
    errors: [...errors].sort((a, b) => a - b),
  };
}

/** The Hono path of a declared path: `{param}` becomes `:param`. */
export function honoPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ":$1");
}

/** Registers routes on an app, each behind auth (if declared) and input validation. */
export function mount(app: Hono<Env>, hub: Hub, specs: RouteSpec[]): void {
  for (const spec of specs) {
    app.on(spec.method.toUpperCase(), honoPath(spec.path), async (c) => {
      let user = "";
      const token = tokenOf(c) ?? "";
      // Who you are is checked before what you sent: a stranger learns nothing about the input.
      if (spec.auth) user = await authenticate(hub, c);
      const params = spec.params ? parse(spec.params, c.req.param(), "path") : {};
      const query = spec.query ? parse(spec.query, c.req.query(), "query") : {};
      let body: unknown = {};
      if (spec.body) {
        const raw = await readJson(c, spec.body, spec.bodyOptional === true);
        body = parse(spec.body, raw, "body");
      } else if ((spec.method === "post" || spec.method === "put") && !spec.streamsBody) {
        // A route without a body still reads (and bounds) what was sent.
        await readBytes(c);
      }
      return await spec.handle({ c, hub, user, token, ip: ipOf(c), params, query, body });
    });
  }
}

/** The codes a schema refinement may ask for (`params.code`). */
const ERROR_CODES: Partial<Record<string, true>> = {
  too_long: true,
  bad_field: true,
  bad_name: true,
};

const NAME_FIELDS = new Set(["user", "username", "login", "user_login", "room", "name"]);

/** Validates one part of the request; the first problem becomes a `ProtocolError`. */
function parse(schema: z.ZodType, value: unknown, where: "path" | "query" | "body"): unknown {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw schemaError(result.error.issues[0]!, where);
}

/** Turns a zod issue into an error code and a sentence that names the REST field. */
function schemaError(issue: z.core.$ZodIssue, where: string): ProtocolError {
  const field = issue.path.map(String).join(".");
  const name = field ? `"${field}"` : `the ${where}`;
  const place = where === "body" ? "" : ` (in the ${where})`;
  let code: ErrorCode = "bad_field";
  let message: string;
  switch (issue.code) {
    case "invalid_type":
      if (field === "") {
        code = "bad_frame";
        message = `The ${where} must be ${expected(issue.expected)}, got ${kind(issue.input)}`;
      } else if (issue.input === undefined) {
        code = "missing_field";
        message = `Send ${name}${place}: it is required (${expected(issue.expected)})`;
      } else {
        message = `${name}${place} must be ${expected(issue.expected)}, got ${kind(issue.input)}`;
      }
      break;
    case "unrecognized_keys":
      message = `Unknown field${issue.keys.length > 1 ? "s" : ""} ${
        issue.keys.map((k) => `"${k}"`).join(", ")
      }${place}: see /api/v1/openapi.json for what this route takes`;
      break;
    case "too_big":
      if (issue.origin === "string") code = "too_long";
      message = issue.origin === "string"
        ? `${name}${place} is longer than ${issue.maximum} characters`
        : `${name}${place} must be at most ${issue.maximum}`;
      break;
    case "too_small":
      message = issue.origin === "string"
        ? `${name}${place} must not be empty`
        : `${name}${place} must be at least ${issue.minimum}`;
      break;
    case "invalid_format":
      if (NAME_FIELDS.has(field)) code = "bad_name";
      message = `${name}${place} is not valid: ${issue.message}`;
      break;
    case "invalid_value":
      message = `${name}${place} must be one of ${
        issue.values.map((v) => JSON.stringify(v)).join(", ")
      }`;
      break;
    case "custom": {
      const wanted = issue.params?.code;
      if (typeof wanted === "string" && wanted in ERROR_CODES) code = wanted as ErrorCode;
      message = `${name}${place} ${issue.message}`;
      break;
    }
    default:
      message = `${name}${place} is not valid: ${issue.message}`;
  }
  return new ProtocolError(code, message);
}

function expected(type: string): string {
  if (type === "int") return "a whole number";
  if (type === "object") return "a JSON object";
  return `a ${type}`;
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function tooLong(): ProtocolError {
  return new ProtocolError(
    "too_long",
    `The body is larger than ${MAX_LINE_BYTES} bytes: send less`,
  );
}

/** Reads the body, refusing more than MAX_LINE_BYTES before reading it all. */
async function readBytes(c: Context<Env>): Promise<Uint8Array> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_LINE_BYTES) throw tooLong();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (c.req.raw.body) {
    const reader = c.req.raw.body.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_LINE_BYTES) {
        await reader.cancel();
        throw tooLong();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const ch of chunks) {
    bytes.set(ch, off);
    off += ch.length;
  }
  return bytes;
}

/**
 * Reads a JSON body whatever its declared content type (`curl -d` sends JSON labelled as form
 * encoding); an empty body is `{}` where the route allows it. A body that is form encoding
 * (`login=ann&password=…`, what Python's `requests.post(url, data={...})` and HTML forms send)
 * is read as an object of its fields, for the route's schema to check like any other.
 */
async function readJson(
  c: Context<Env>,
  schema: z.ZodType,
  optional: boolean,
): Promise<unknown> {
  const bytes = await readBytes(c);
  // Deno gives a body-less POST an empty stream, not a null body: judge by the bytes.
  if (optional && bytes.length === 0) return {};
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch (cause) {
    const type = c.req.header("content-type") ?? "";
    if (/^application\/x-www-form-urlencoded\b/i.test(type) && !text.trimStart().startsWith("{")) {
      return Object.fromEntries(new URLSearchParams(text));
    }
    throw new ProtocolError(
      "bad_json",
      `The body is not valid JSON: send an object such as ${exampleOf(schema)}`,
      { cause },
    );
  }
}

/** A body's fields as a JSON example for an error: `{"login":"…","password":"…"}`. */
function exampleOf(schema: z.ZodType): string {
  const shape = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
  return shape.length === 0
    ? '{"message":"hi"}'
    : `{${shape.map((k) => `${JSON.stringify(k)}:"…"`).join(",")}}`;
}

/** The OpenAPI 3.1 document of the declared routes. */
export function openApiDocument(specs: RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of specs) {
    const { errors } = statusesOf(spec);
    const responses: Record<string, unknown> = {};
    for (const [status, ok] of Object.entries(spec.ok)) {
      responses[status] = {
        description: ok.description,
        ...(ok.schema
          ? { content: { "application/json": { schema: jsonSchema(ok.schema, "output") } } }
          : ok.mediaType
          ? { content: { [ok.mediaType]: {} } }
          : {}),
      };
    }
    for (const e of errors) {
      responses[e] = {
        description: STATUS_TEXT[e] ?? "error",
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      };
    }
    const parameters = [
      ...parametersOf(spec.params, "path"),
      ...parametersOf(spec.query, "query"),
      ...(spec.headers ?? []).map((h) => ({
        name: h.name,
        in: "header",
        required: false,
        description: h.description,
        schema: { type: "string" },
      })),
    ];
    (paths[spec.path] ??= {})[spec.method] = {
      tags: [spec.tag],
      summary: spec.summary,
      operationId: operationId(spec),
      ...(spec.auth ? { security: [{ bearer: [] }, { plainToken: [] }] } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(spec.body
        ? {
          requestBody: {
            required: spec.bodyOptional !== true,
            content: { "application/json": { schema: jsonSchema(spec.body, "input") } },
          },
        }
        : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "chat",
      version: "1",
      description:
        "REST, WebSocket and SSE access to the chat. Frames are described in docs/protocol.md.",
    },
    paths,
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "Authorization: Bearer TOKEN" },
        plainToken: {
          type: "apiKey",
          in: "header",
          name: "Authorization",
          description: "Authorization: TOKEN (the token alone, as the first API version took it)",
        },
      },
      schemas: {
        Error: jsonSchema(ErrorBody, "output"),
      },
    },
  };
}

/** The body of every error response. */
const ErrorBody = z.object({
  error: z.object({
    code: z.string().meta({ description: "a stable code, as in error frames" }),
    message: z.string().meta({ description: "what went wrong and what to do" }),
  }),
});

function operationId(spec: RouteSpec): string {
  const words = spec.path.replace(/^\/api\/v1/, "").split(/[\/_.{}-]+/).filter(Boolean);
  return spec.method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
}

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io,
    unrepresentable: "any",
  }) as Record<string, unknown>;
  return rest;
}

function parametersOf(schema: z.ZodType | undefined, where: "path" | "query") {
  if (!schema) return [];
  const json = jsonSchema(schema, "input");
  const props = (json.properties ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}
