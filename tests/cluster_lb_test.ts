/**
 * The README's load-balancer setup, for real: Debian's HAProxy runs deploy/haproxy.cfg (ports
 * rewritten to free ones) in front of three cluster nodes; clients use its one address, and a
 * node killed under a client is left for another with nothing missed.
 */
import assert from "node:assert/strict";
import { api, JsonClient, type ServerProcess, startServer, WsClient } from "./_helpers.ts";
import { NatsServer, natsServerInstalled } from "./_nats.ts";

const CONFIG = new URL("../deploy/haproxy.cfg", import.meta.url).pathname;

function installed(cmd: string): boolean {
  try {
    new Deno.Command(cmd, { args: ["-v"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

const ignore = !natsServerInstalled() || !installed("haproxy");
if (ignore) {
  console.warn("load-balancer test skipped: needs nats-server and haproxy (apt-get install)");
}

Deno.test({
  name:
    "cluster behind HAProxy (deploy/haproxy.cfg): one address for TCP and WebSocket; a killed node's clients land on another",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_lb_" });
    await using nats = await NatsServer.start();
    const nodes: ServerProcess[] = await Promise.all(
      [1, 2, 3].map((n) =>
        startServer({
          data: `${dir}/chat.kv`,
          args: ["--cluster", nats.url, "--node", `n${n}`, "--max-connections-per-ip", "0"],
        })
      ),
    );
    const lbTcp = freePort();
    const lbHttp = freePort();
    let config = await Deno.readTextFile(CONFIG);
    config = config.replace("127.0.0.1:8000", `127.0.0.1:${lbTcp}`)
      .replace("127.0.0.1:8080", `127.0.0.1:${lbHttp}`);
    nodes.forEach((node, i) => {
      config = config.replace(
        `127.0.0.1:800${i + 1} check port 808${i + 1}`,
        `127.0.0.1:${node.tcpPort} check port ${node.httpPort}`,
      )
        .replace(`127.0.0.1:808${i + 1} check`, `127.0.0.1:${node.httpPort} check`);
    });
    await Deno.writeTextFile(`${dir}/haproxy.cfg`, config);
    const proxy = new Deno.Command("haproxy", {
      args: ["-f", `${dir}/haproxy.cfg`, "-db"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const proxyLog = new Response(proxy.stderr).text();
    try {
      const lb = `http://127.0.0.1:${lbHttp}`;
      // HAProxy's checks mark every node up.
      for (let i = 0; i < 100; i++) {
        if ((await api(lb, "GET", "/healthz").catch(() => ({ status: 0 }))).status === 200) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const alice = await JsonClient.connect(lbTcp, { username: "alice" });
      const bob = await WsClient.open(`ws://127.0.0.1:${lbHttp}/ws`);
      bob.send({ username: "bob" });
      await bob.type("welcome");
      await alice.send({ type: "message", room: "general", message: "through the proxy" });
      await bob.type("message", (f) => f.message === "through the proxy");

      // Kill the node that holds alice's connection.
      const counts = await Promise.all(
        nodes.map(async (n) =>
          (await api(`http://127.0.0.1:${n.httpPort}`, "GET", "/healthz")).json
            .connections as number
        ),
      );
      // bob's WebSocket may share her node: kill hers all the same (both must land elsewhere).
      const hers = await Promise.all(nodes.map(async (n) => {
        const c = await JsonClient.connect(n.tcpPort, { username: "Probe" + n.tcpPort });
        await c.send({ type: "users", username: "alice" });
        const list = await c.type("users_list");
        await c.close();
        return list.all[0]?.connections ?? 0;
      }));
      const victim = hers.findIndex((n) => n > 0);
      assert.ok(victim >= 0, `alice is on no node? ${hers} (connections ${counts})`);
      await nodes[victim]!.stop("SIGKILL");
      await alice.closedByServer();

      // Reconnecting through the same address reaches a live node, with what was said meanwhile.
      const carol = await JsonClient.connect(lbTcp, { username: "carol" });
      await carol.send({ type: "message", room: "general", message: "while alice moved" });
      await carol.type("ack");
      const again = await JsonClient.connect(lbTcp, { username: "alice" });
      await again.frame(
        (f) => f.type === "history" && f.messages.some((m) => m.message === "while alice moved"),
        "alice's replay",
      );
      await again.close();
      await carol.close();
      await bob.close();
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\nhaproxy said: ${await Promise.race([
          proxyLog,
          Promise.resolve("(running)"),
        ])}`,
      );
    } finally {
      try {
        proxy.kill("SIGTERM");
      } catch { /* gone */ }
      await proxy.status;
      await proxyLog;
      await Promise.all(nodes.map((n) => n.stop().catch(() => 0)));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
