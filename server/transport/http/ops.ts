/**
 * Operations: health, Prometheus metrics, the OpenAPI document, and the console page.
 * @module
 */

import { z } from "zod";
import type { Context } from "hono";
import { ChatError } from "../../core/errors.ts";
import type { Hub } from "../../core/hub.ts";
import type { StoreStats } from "../../store/group_commit.ts";
import { CONSOLE_MISSING, consoleBundle, consoleHtml } from "../console.ts";
import { type Env, tokenOf } from "./context.ts";
import { route, type RouteSpec } from "./route.ts";

/** Store counters for /metrics (commits and their latency). */
export type StoreStatsSource = () => StoreStats;

/** What a cluster node says about its cluster in /healthz. */
export interface ClusterHealth {
  node: string;
  /** Whether this node's NATS connection is up. */
  nats: boolean;
  /** Other nodes heard from recently. */
  nodes: Array<{ node: string; users: number; seenMsAgo: number }>;
}

/** What the operations routes need. */
export interface OpsOptions {
  startedAt: number;
  /** Whether the store answers (a read of one key, bounded in time). */
  storeReachable?: (() => Promise<boolean>) | undefined;
  /** Cluster mode: this node's view of its cluster. */
  cluster?: (() => ClusterHealth) | undefined;
  heartbeatMs: number;
  storeStats?: StoreStatsSource | undefined;
  /** A bearer token that may read /metrics besides admins' tokens ("": admins only). */
  metricsToken: string;
  /** The OpenAPI document (generated from every route's declaration). */
  document: () => Record<string, unknown>;
}

/** Health, metrics, document and console routes. */
export function opsRoutes(options: OpsOptions): RouteSpec[] {
  return [
    route({
      method: "get",
      path: "/healthz",
      tag: "health",
      summary: "Liveness and a few counters",
      ok: {
        200: {
          description: "alive",
          schema: z.object({
            status: z.enum(["ok", "degraded"]),
            uptime_s: z.number().int(),
            connections: z.number().int(),
            online_users: z.number().int(),
            store: z.enum(["ok", "unreachable"]),
            cluster: z.object({
              node: z.string(),
              nats: z.enum(["connected", "disconnected"]),
              nodes: z.array(
                z.object({ node: z.string(), users: z.number().int(), seen_ms_ago: z.number() }),
              ),
            }).optional(),
          }),
        },
      },
      async handle({ hub, c }) {
        const store = (await (options.storeReachable?.() ?? Promise.resolve(true)))
          ? "ok" as const
          : "unreachable" as const;
        const cl = options.cluster?.();
        return c.json({
          // Degraded: serving this node's users, but cut off from the store or the cluster.
          status: store === "ok" && (cl?.nats ?? true) ? "ok" as const : "degraded" as const,
          uptime_s: Math.round((Date.now() - options.startedAt) / 1000),
          connections: hub.connections,
          online_users: hub.onlineUsers,
          store,
          ...(cl
            ? {
              cluster: {
                node: cl.node,
                nats: cl.nats ? "connected" as const : "disconnected" as const,
                nodes: cl.nodes.map((n) => ({
                  node: n.node,
                  users: n.users,
                  seen_ms_ago: n.seenMsAgo,
                })),
              },
            }
            : {}),
        });
      },
    }),
    route({
      method: "get",
      path: "/api/v1/openapi.json",
      tag: "health",
      summary: "This document",
      ok: { 200: { description: "the OpenAPI 3.1 document", mediaType: "application/json" } },
      handle({ c }) {
        return c.json(options.document());
      },
    }),
    route({
      method: "get",
      path: "/",
      tag: "console",
      summary: "The web console (chat and admin)",
      ok: { 200: { description: "HTML", mediaType: "text/html" } },
      async handle({ c }) {
        return c.html(
          (await consoleBundle()) ? consoleHtml(options.heartbeatMs) : CONSOLE_MISSING,
        );
      },
    }),
    route({
      method: "get",
      path: "/app.js",
      tag: "console",
      summary: "The console's script",
      ok: { 200: { description: "JavaScript", mediaType: "text/javascript" } },
      errors: [404],
      async handle({ c }) {
        const js = await consoleBundle();
        if (!js) return c.text("not built: deno task build:web", 404);
        return c.body(js as Uint8Array<ArrayBuffer>, 200, {
          "content-type": "text/javascript; charset=utf-8",
          "cache-control": "no-cache",
        });
      },
    }),
    route({
      method: "get",
      path: "/metrics",
      tag: "health",
      summary:
        "Prometheus metrics: connections by transport, messages, deliveries, errors, KV commits and latency",
      ok: { 200: { description: "Prometheus text", mediaType: "text/plain; version=0.0.4" } },
      errors: [401, 403],
      headers: [{
        name: "Authorization",
        description: "Bearer --metrics-token, or an admin's token",
      }],
      async handle({ hub, c }) {
        await checkMetricsAccess(hub, c, options.metricsToken);
        return c.text(metricsText(hub, options.storeStats), 200, {
          "content-type": "text/plain; version=0.0.4; charset=utf-8",
        });
      },
    }),
  ];
}

/** /metrics is for the operator: the --metrics-token, or an admin's token. */
async function checkMetricsAccess(hub: Hub, c: Context<Env>, metricsToken: string): Promise<void> {
  const token = tokenOf(c);
  if (metricsToken && token && timingSafeEqual(token, metricsToken)) return;
  if (!token) {
    throw new ChatError(
      "not_logged_in",
      "Metrics need a token: Authorization: Bearer <--metrics-token or an admin's token>",
    );
  }
  const user = await hub.authenticate(token);
  const status = await hub.run(user, { type: "status" });
  if (!status.admin) {
    throw new ChatError("forbidden", "Only admins (or --metrics-token) read metrics");
  }
}

/** Compares two strings in time that does not depend on where they differ. */
function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function metric(name: string, type: "gauge" | "counter", help: string, lines: string[]): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines];
}

/** Process memory, as V8 and the OS see it (what the idle-connection benchmark compares). */
function memoryMetrics(): string[] {
  const m = Deno.memoryUsage();
  return [
    ...metric("chat_memory_rss_bytes", "gauge", "Resident memory of the process.", [
      `chat_memory_rss_bytes ${m.rss}`,
    ]),
    ...metric("chat_memory_heap_used_bytes", "gauge", "Live JavaScript heap (after the last GC).", [
      `chat_memory_heap_used_bytes ${m.heapUsed}`,
    ]),
    ...metric("chat_memory_heap_total_bytes", "gauge", "JavaScript heap reserved by V8.", [
      `chat_memory_heap_total_bytes ${m.heapTotal}`,
    ]),
    ...metric("chat_memory_external_bytes", "gauge", "Memory V8 tracks outside its heap.", [
      `chat_memory_external_bytes ${m.external}`,
    ]),
  ];
}

function metricsText(hub: Hub, storeStats: StoreStatsSource | undefined): string {
  const st = hub.statsFrame();
  const lines = [
    ...metric(
      "chat_connections",
      "gauge",
      "Open connections by transport.",
      Object.entries({ "tcp-json": 0, "tcp-text": 0, irc: 0, ws: 0, sse: 0, ...st.by_transport })
        .map(([t, n]) => `chat_connections{transport="${t}"} ${n}`),
    ),
    ...metric("chat_online_users", "gauge", "Users with at least one connection.", [
      `chat_online_users ${st.online_users}`,
    ]),
    ...metric("chat_messages_total", "counter", "Messages stored since start.", [
      `chat_messages_total ${st.messages_total}`,
    ]),
    ...metric("chat_deliveries_total", "counter", "Frames delivered to connections since start.", [
      `chat_deliveries_total ${hub.stats.deliveries}`,
    ]),
    ...metric(
      "chat_guests_forgotten_total",
      "counter",
      "Idle guests forgotten since start (gone past --guest-grace, nothing left behind).",
      [`chat_guests_forgotten_total ${hub.stats.guestsForgotten}`],
    ),
    ...metric("chat_errors_total", "counter", "Internal errors since start.", [
      `chat_errors_total ${hub.stats.errors}`,
    ]),
    ...metric("chat_uptime_seconds", "gauge", "Seconds since start.", [
      `chat_uptime_seconds ${st.uptime_s}`,
    ]),
    ...memoryMetrics(),
  ];
  const store = storeStats?.();
  if (store) {
    lines.push(
      ...metric("chat_kv_commits_total", "counter", "Deno KV commits (each a group of writes).", [
        `chat_kv_commits_total ${store.commits}`,
      ]),
      ...metric("chat_kv_mutations_total", "counter", "Deno KV mutations committed.", [
        `chat_kv_mutations_total ${store.mutations}`,
      ]),
      ...metric("chat_kv_commit_seconds_sum", "counter", "Time spent in KV commits.", [
        `chat_kv_commit_seconds_sum ${(store.commitMsTotal / 1000).toFixed(6)}`,
      ]),
      ...metric("chat_kv_commit_seconds_max", "gauge", "Slowest KV commit.", [
        `chat_kv_commit_seconds_max ${(store.commitMsMax / 1000).toFixed(6)}`,
      ]),
      ...metric(
        "chat_kv_sequence_conflicts_total",
        "counter",
        "Batches numbered again because another node moved a chat's sequence counter.",
        [`chat_kv_sequence_conflicts_total ${store.sequenceConflicts}`],
      ),
      ...metric(
        "chat_kv_locked_retries_total",
        "counter",
        'KV operations retried after "database is locked" (another process writing).',
        [`chat_kv_locked_retries_total ${store.lockedRetries}`],
      ),
    );
  }
  return lines.join("\n") + "\n";
}
