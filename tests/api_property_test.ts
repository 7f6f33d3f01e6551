/**
 * The HTTP API against its own OpenAPI document, as a third-party fuzzer would test it: the
 * document validates as OpenAPI 3.1; requests generated from each route's schemas (valid ones,
 * and ones broken in one place) go to every route with a user's and an admin's token; no
 * answer is a 5xx, every status is one the route declares, no broken request is accepted, and
 * every JSON answer matches its declared schema.
 */
import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import fc from "fast-check";
import { createLogger } from "../server/log.ts";
import { apiDocument, createHttpApp } from "../server/transport/http/app.ts";
import { makeHub, seedAdmin } from "./_helpers.ts";

type Schema = Record<string, unknown>;
type Operation = {
  parameters?: Array<{ name: string; in: string; required: boolean; schema: Schema }>;
  requestBody?: { required: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
  security?: unknown[];
};

/** Names that stand for things that exist, so valid requests also reach the success paths. */
const KNOWN: Record<string, string[]> = {
  user: ["bob", "carol", "Bob"],
  username: ["bob", "carol"],
  user_login: ["bob"],
  login: ["bob", "newcomer"],
  to: ["bob"],
  room: ["general", "books", "#general"],
  name: ["books", "newroom"],
  chat: ["general", "@bob", "main"],
};

/** A fast-check arbitrary for a JSON Schema (the subset the document uses). */
function arbitrary(schema: Schema, name = ""): fc.Arbitrary<unknown> {
  const own = ownArbitrary(schema);
  const known = KNOWN[name];
  return known ? fc.oneof(fc.constantFrom(...known), own) : own;
}

function ownArbitrary(schema: Schema): fc.Arbitrary<unknown> {
  if (Array.isArray(schema.anyOf)) return fc.oneof(...schema.anyOf.map((s) => arbitrary(s)));
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum);
  if (schema.const !== undefined) return fc.constant(schema.const);
  switch (schema.type) {
    case "string": {
      if (schema.format === "date-time") {
        return fc.integer({ min: -86_400_000, max: 40 * 86_400_000 })
          .map((d) => new Date(Date.now() + d).toISOString());
      }
      const min = Number(schema.minLength ?? 0);
      const max = Number(schema.maxLength ?? 40);
      const base = typeof schema.pattern === "string"
        ? fc.stringMatching(new RegExp(schema.pattern, "u"))
        : fc.string({ minLength: min, maxLength: Math.min(max, 60), unit: "grapheme" });
      return base.filter((s) => [...s].length >= min && [...s].length <= max);
    }
    case "integer":
      return fc.integer({
        min: Number(schema.minimum ?? -1000),
        max: Math.min(Number(schema.maximum ?? 1000), 1_000_000),
      });
    case "number":
      return fc.double({ noNaN: true });
    case "boolean":
      return fc.boolean();
    case "object": {
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const required = new Set((schema.required ?? []) as string[]);
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, s] of Object.entries(props)) model[k] = arbitrary(s, k);
      return fc.record(model, { requiredKeys: [...required] });
    }
    default:
      return fc.anything();
  }
}

const checker = new Ajv2020({ strict: false, validateFormats: false });

/** Something the schema does not allow. */
function wrongValue(schema: Schema): fc.Arbitrary<unknown> {
  return candidates(schema).filter((v) => !checker.validate(schema, v));
}

/** A path or query value (always a string on the wire) the schema does not allow. */
function wrongParam(schema: Schema): fc.Arbitrary<string> {
  return candidates(schema).map((v) => typeof v === "string" ? v : JSON.stringify(v)).filter(
    (v) => {
      // Query integers are sent as digits and read as numbers.
      const value = schema.type === "integer" && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
      return v !== "" && !checker.validate(schema, value);
    },
  );
}

function candidates(schema: Schema): fc.Arbitrary<unknown> {
  switch (schema.type) {
    case "string":
      return fc.oneof(
        fc.integer(),
        fc.constant(null),
        fc.constant([]),
        ...(typeof schema.pattern === "string" || schema.minLength !== undefined
          ? [fc.constantFrom("", " ", "a b/c", "\u0000x", "x".repeat(5000), "#", "@")]
          : []),
        // A string bounded only in length (a comma-separated list) is broken by a longer one.
        ...(schema.maxLength !== undefined
          ? [fc.constant("x".repeat(Number(schema.maxLength) + 1))]
          : []),
      );
    case "integer":
      return fc.oneof(fc.constant("abc"), fc.constant(1.5), fc.constant(-5), fc.constant(1e12));
    case "boolean":
      return fc.oneof(fc.constant("yes"), fc.constant(1));
    default:
      return fc.constant("not an object");
  }
}

interface Request {
  path: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
  hasBody: boolean;
  broken: string | null;
}

function requestArbitrary(op: Operation): fc.Arbitrary<Request> {
  const params = op.parameters ?? [];
  const part = (where: string) => {
    const model: Record<string, fc.Arbitrary<unknown>> = {};
    const required: string[] = [];
    for (const p of params.filter((p) => p.in === where)) {
      model[p.name] = arbitrary(p.schema, p.name);
      if (p.required) required.push(p.name);
    }
    return fc.record(model, { requiredKeys: required });
  };
  const bodySchema = op.requestBody?.content["application/json"]?.schema;
  const valid = fc.record({
    path: part("path"),
    query: part("query"),
    body: bodySchema ? arbitrary(bodySchema) : fc.constant(undefined),
  });
  // One thing broken: a parameter of the wrong shape, a required body field missing or
  // wrong, an unknown body field, or a body that is not an object.
  const breakers: fc.Arbitrary<Request>[] = [];
  for (const p of params.filter((p) => p.in !== "header" && canBreak(p.schema))) {
    breakers.push(
      fc.tuple(valid, wrongParam(p.schema)).map(([r, bad]) => {
        const where = p.in === "path" ? r.path : r.query;
        return {
          ...r,
          [p.in]: { ...where, [p.name]: bad },
          hasBody: bodySchema !== undefined,
          broken: `${p.in} ${p.name}`,
        } as Request;
      }),
    );
  }
  if (bodySchema?.type === "object") {
    const props = (bodySchema.properties ?? {}) as Record<string, Schema>;
    for (const name of (bodySchema.required ?? []) as string[]) {
      breakers.push(valid.map((r) => {
        const { [name]: _drop, ...rest } = r.body as Record<string, unknown>;
        return { ...r, body: rest, hasBody: true, broken: `body without ${name}` };
      }));
    }
    for (const [name, s] of Object.entries(props)) {
      breakers.push(
        fc.tuple(valid, wrongValue(s)).map(([r, bad]) => ({
          ...r,
          body: { ...(r.body as object), [name]: bad },
          hasBody: true,
          broken: `body ${name}`,
        })),
      );
    }
    breakers.push(valid.map((r) => ({
      ...r,
      body: { ...(r.body as object), zz_unknown: 1 },
      hasBody: true,
      broken: "an unknown body field",
    })));
    breakers.push(
      fc.tuple(valid, fc.constantFrom([], "text", 42)).map(([r, b]) => ({
        ...r,
        body: b,
        hasBody: true,
        broken: "a body that is not an object",
      })),
    );
  }
  const good = valid.map((r) => ({ ...r, hasBody: bodySchema !== undefined, broken: null }));
  return breakers.length > 0 ? fc.oneof(good, ...breakers) : good;
}

/** Whether a parameter (a string on the wire) has any value its schema refuses. */
function canBreak(schema: Schema): boolean {
  return schema.type !== "string" || schema.pattern !== undefined ||
    schema.minLength !== undefined || schema.maxLength !== undefined ||
    schema.enum !== undefined;
}

function urlOf(template: string, req: Request): string {
  const path = template.replace(
    /\{(\w+)\}/g,
    (_m, name) => encodeURIComponent(String(req.path[name] ?? "")),
  );
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query)) {
    if (v !== undefined) query.set(k, typeof v === "string" ? v : JSON.stringify(v));
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Reads an event stream's first chunk, then lets it go. */
async function firstEvent(res: Response): Promise<string> {
  const reader = res.body!.getReader();
  const { value } = await reader.read();
  await reader.cancel();
  assert.match(new TextDecoder().decode(value), /^: connected/);
  return "";
}

Deno.test("the generated OpenAPI document is valid OpenAPI 3.1", async () => {
  const result = await new Validator().validate(apiDocument());
  assert.equal(result.valid, true, JSON.stringify(result).slice(0, 2000));
});

Deno.test("every /api/v1 route, fed schema-generated good and broken requests as a user and an admin, answers only what it declares", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const app = createHttpApp(hub, { log: createLogger("silent"), startedAt: Date.now() });
  const doc = apiDocument() as { paths: Record<string, Record<string, Operation>> };
  const errorSchema = (doc as unknown as { components: { schemas: { Error: Schema } } })
    .components.schemas.Error;
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema(errorSchema, "#/components/schemas/Error");
  const login = async (username: string, password = "password1") => {
    const res = await app.request("/api/v1/session", {
      method: "POST",
      body: JSON.stringify({ username, password }),
    });
    assert.equal(res.status, 201);
    return ((await res.json()) as { token: string }).token;
  };
  const userToken = await login("alice");
  await login("bob");
  await login("carol");
  await hub.request("alice", { type: "join", room: "books" });
  const admin = await login("Root", "root-password");
  const counts = { requests: 0, ok2xx: 0, broken: 0 };
  for (const [template, methods] of Object.entries(doc.paths)) {
    if (template === "/ws" || template === "/") continue;
    for (const [method, op] of Object.entries(methods)) {
      const declared = new Set(Object.keys(op.responses).map(Number));
      const label = `${method.toUpperCase()} ${template}`;
      await fc.assert(
        fc.asyncProperty(requestArbitrary(op), fc.boolean(), async (req, asAdmin) => {
          let token = asAdmin ? admin : userToken;
          // Logging out revokes the token it is called with: use a fresh one each time.
          if (label === "DELETE /api/v1/session") token = await login("leaver");
          const res = await app.request(urlOf(template, req), {
            method: method.toUpperCase(),
            headers: { authorization: `Bearer ${token}` },
            ...(req.hasBody ? { body: JSON.stringify(req.body) } : {}),
          });
          counts.requests++;
          const text = res.headers.get("content-type")?.includes("event-stream")
            ? await firstEvent(res)
            : await res.text();
          const what = `${label} (${req.broken ?? "valid"}) ${
            JSON.stringify(req)
          } → ${res.status} ${text.slice(0, 300)}`;
          assert.ok(res.status < 500, `a 5xx: ${what}`);
          assert.ok(declared.has(res.status), `status ${res.status} is not declared: ${what}`);
          if (req.broken) {
            counts.broken++;
            assert.ok(res.status >= 400, `broken input was accepted: ${what}`);
          }
          if (res.status < 300) counts.ok2xx++;
          const schema = op.responses[String(res.status)]?.content?.["application/json"]?.schema;
          if (schema && text) {
            assert.ok(
              ajv.validate(schema, JSON.parse(text)),
              `the answer does not match its schema (${ajv.errorsText()}): ${what}`,
            );
          }
        }),
        { numRuns: 25 },
      );
    }
  }
  // The property saw real successes, not only refusals.
  assert.ok(counts.ok2xx > counts.requests / 10, JSON.stringify(counts));
  assert.ok(counts.broken > counts.requests / 4, JSON.stringify(counts));
});
