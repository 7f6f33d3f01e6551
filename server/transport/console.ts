/**
 * The web console's page: a small HTML shell with its styles; the app itself is the bundle
 * built by `deno task build:web` into web/dist/app.js (embedded by `deno compile --include`).
 * @module
 */

const STYLE = `
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,sans-serif;color:#1f2328;background:#f6f8fa;display:flow-root;min-height:100vh}
button{font:inherit;cursor:pointer;border:1px solid #d0d7de;background:#fff;border-radius:6px;padding:4px 10px}
button.small{padding:0 6px;font-size:12px;min-height:24px;min-width:24px}button.on{background:#0969da;color:#fff}
input{font:inherit;padding:5px 8px;border:1px solid #d0d7de;border-radius:6px;max-width:100%}
.login-page{padding:12vh 12px 0}.login{max-width:320px;margin:0 auto;display:flex;flex-direction:column;gap:8px;background:#fff;padding:24px;border-radius:12px;border:1px solid #d0d7de}
.error,.errors{color:#cf222e}.errors{background:#ffebe9;padding:6px 12px;cursor:pointer}
header{display:flex;align-items:center;gap:12px;padding:0 12px;height:48px;background:#24292f;color:#fff}
header nav{margin-left:auto;display:flex;gap:6px}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;background:#8c959f;margin-right:4px}.dot.on{background:#2da44e}
.app{display:flex;flex-direction:column;height:100vh;height:100dvh}.app>header,.app>.errors{flex:none}
.chat{display:flex;flex:1;min-height:0}.app>.admin{flex:1;overflow:auto}
aside{width:260px;overflow:auto;padding:8px 12px;border-right:1px solid #d0d7de;background:#fff}
aside ul{list-style:none;margin:0 0 8px;padding:0}aside li{padding:2px 4px;border-radius:4px;cursor:pointer}aside li.on{background:#ddf4ff}
aside h2{font-size:12px;text-transform:uppercase;color:#57606a;margin:12px 0 4px}aside form{margin:4px 0}aside a{cursor:pointer}
.away{color:#57606a;margin-left:4px}.away-mine{margin:4px 0;font-size:13px}.badge{background:#0969da;color:#fff;border-radius:10px;padding:0 6px;font-size:11px;margin-left:4px}
.pane{flex:1;display:flex;flex-direction:column;min-width:0;padding:8px 12px}.pane.drag{outline:3px dashed #0969da}
.pane h2{margin:4px 0}.pane-head{display:flex;align-items:center;gap:8px}.messages{flex:1;overflow:auto;list-style:none;padding:0;margin:0}
.messages li{padding:3px 0;border-bottom:1px solid #eaeef2;overflow:hidden}.messages time{color:#57606a;font-size:12px}
.messages .text{margin-left:6px;white-space:pre-wrap}.messages .notice .text{font-style:italic;color:#57606a}.messages .reply{display:block;color:#57606a;font-size:12px;margin-left:40px}
.messages .file{display:block;margin-left:40px}.actions{float:right}.actions button{color:#57606a}
.prompt{background:#fff8c5;padding:6px;border-radius:6px;margin:4px 0}.owner{margin:4px 0;display:flex;gap:6px;flex-wrap:wrap}
.notices{color:#57606a;font-size:12px}.replying{font-size:12px;color:#57606a}
.composer{display:flex;gap:6px;margin-top:6px}.composer input[name=text]{flex:1}.upload input{display:none}.upload{cursor:pointer;padding:4px}
.admin{padding:12px;display:grid;gap:16px;grid-template-columns:minmax(0,1fr) minmax(0,1fr)}.admin h2{font-size:15px;margin:8px 0 4px}.scroll{overflow-x:auto;position:relative}.admin section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px 12px}
.counters{grid-column:1/-1;display:flex;gap:24px}.counters b{font-size:22px;display:block}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eaeef2}
.log{font:12px monospace;max-height:320px;overflow:auto;padding-left:0;list-style:none}.log .log-error{color:#cf222e}.log .log-moderation{color:#9a6700}
.user{margin-right:8px}.loading{padding:24px}
h1.brand{font-size:16px;margin:0}.login h1{margin:0 0 4px}
.sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
button.link{border:0;background:none;padding:0 2px;color:#0969da;text-align:left}aside li button.link{color:inherit}aside [data-testid=rooms] button.link{width:100%}
:focus-visible{outline:2px solid #0969da;outline-offset:1px}.upload:focus-within{outline:2px solid #0969da;border-radius:6px}
.check{white-space:nowrap;display:inline-flex;align-items:center;gap:4px;min-height:24px}.check input{width:20px;height:20px;margin:2px}aside input:not([type=checkbox]){width:100%}
.errors{display:flex;gap:12px;align-items:flex-start}.errors>button{margin-left:auto}.pager{display:flex;gap:6px}
.admin section{min-width:0}.admin table{min-width:480px}
@media (max-width:700px){
.chat{flex-direction:column}
aside{width:auto;border-right:0;border-bottom:1px solid #d0d7de;max-height:28dvh;flex:none}
.pane{flex:1;min-height:0}.admin{grid-template-columns:minmax(0,1fr)}}
`;

/** The console page; it tells the app the server's heartbeat, which the app keeps too. */
export function consoleHtml(heartbeatMs: number): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>chat</title><meta name="description" content="A chat: rooms, private messages and sessions, files, in the browser, a terminal or any TCP client.">
<link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body data-heartbeat-ms="${
    Math.round(heartbeatMs)
  }"><div id="app"></div><script type="module" src="/app.js"></script></body></html>`;
}

/** Shown when the bundle was not built. */
export const CONSOLE_MISSING =
  `<!doctype html><html><body style="font:16px system-ui;margin:10vh auto;max-width:40em">
<h1>The console is not built</h1><p>Run <code>deno task build:web</code> (or start the server with
<code>deno task start</code>, which builds it) and reload. The chat itself works without it.</p></body></html>`;

let bundle: Uint8Array | null | undefined;

/** The console bundle, read once (null when it was not built). */
export async function consoleBundle(): Promise<Uint8Array | null> {
  if (bundle !== undefined) return bundle;
  try {
    bundle = await Deno.readFile(new URL("../../web/dist/app.js", import.meta.url));
  } catch {
    bundle = null;
  }
  return bundle;
}
