// The browser half of Spoon's terminal: xterm.js on a WebSocket to the user's
// box. Terminal bytes travel as binary frames; control messages as JSON text.
// Output is acknowledged from xterm's write callback, so the server stops
// reading the box while this tab is behind (flow control).
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { previewOf } from "./previews.js";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { ClipboardAddon } from "@xterm/addon-clipboard";
import { call, socketUrl } from "./api.js";

const ACK_EVERY = 8192; // bytes written into xterm before we tell the server
const PING_EVERY = 25000;
const MAX_BACKOFF = 10000;
const FRAME_BYTES = 65536;
const STABLE_AFTER = 5000; // a session this old resets the reconnect backoff

const STATUS_TEXT = {
  connecting: "Connecting…",
  starting: "Starting your box…",
  dotfiles: "Applying dotfiles…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
  idle: "Idle: your box stops soon unless you type.",
  watched: "Staff have this terminal open.",
  warned: "Connected, with a warning.",
  stopped: "Your box stopped. Press a key or click here to start it again.",
  failed: "The terminal could not open.",
};
const BOX_STOPPED = 4410; // the server's close code: the box stopped, do not start it again

// xterm measures its cell size once, when it opens: the web font must be
// there by then, or columns and glyphs disagree.
async function fontsLoaded() {
  try {
    await Promise.all([
      document.fonts.load('14px "JetBrains Mono"'),
      document.fonts.load('bold 14px "JetBrains Mono"'),
      document.fonts.load('14px "PureNerdFont"', "\ue0b0"),
    ]);
  } catch (error) {
    // A missing font only costs looks; the terminal works with the fallback.
  }
}

// This tab's id, kept across reloads (sessionStorage is per tab): the box
// gives each tab a tmux window of its own, so each keeps its own size, and a
// reload finds its window again.
function tabId() {
  let id = sessionStorage.getItem("spoon-terminal-tab");
  if (!id) {
    id = Math.random().toString(36).slice(2, 10) || "1";
    sessionStorage.setItem("spoon-terminal-tab", id);
  }
  return id;
}

export async function startTerminal(root) {
  await fontsLoaded();
  const status = root.querySelector("[data-terminal-status]");
  const screen = root.querySelector("[data-terminal-screen]");
  const ticketsUrl = root.dataset.ticketsUrl;
  const workspace = root.dataset.workspace || "";
  const owner = root.dataset.owner || "";
  const allowTyping = root.querySelector("[data-allow-typing]"); // staff, on a user's box

  const term = new Terminal({
    allowProposedApi: true,
    cursorBlink: true,
    fontFamily: '"JetBrains Mono", "PureNerdFont", ui-monospace, monospace',
    fontSize: 14,
    scrollback: 10000,
    theme: { background: "#15181c" },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  // A link to a server in the box (localhost, 127.0.0.1, 0.0.0.0) opens its preview.
  term.loadAddon(new WebLinksAddon((event, uri) => {
    window.open(previewOf(uri, root.dataset.previewPattern) || uri, "_blank", "noopener");
  }));
  term.loadAddon(new Unicode11Addon());
  // What tmux copies (a mouse selection) reaches the system clipboard through
  // its clipboard escape (OSC 52). Writes only: nothing in the box may read
  // the user's clipboard.
  term.loadAddon(new ClipboardAddon(undefined, {
    readText: () => "",
    writeText: (selection, text) => navigator.clipboard?.writeText(text),
  }));
  term.unicode.activeVersion = "11";
  term.open(screen);
  fit.fit();
  term.focus();

  let socket = null;
  let backoff = 500;
  let unacked = 0;
  let ackTimer = null;
  let pingTimer = null;
  let stableTimer = null;
  let stopped = false;
  let asleep = false; // the box stopped: wait for the user before starting it again
  let lastFailure = ""; // why the last connection failed, said while reconnecting
  const encoder = new TextEncoder();

  function setStatus(state, detail) {
    status.dataset.state = state;
    status.textContent = detail || STATUS_TEXT[state] || state;
    status.title = status.textContent; // the whole of a long sentence the bar cuts
  }

  function sendJSON(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function flushAck() {
    clearTimeout(ackTimer);
    ackTimer = null;
    if (unacked > 0) {
      sendJSON({ type: "ack", bytes: unacked });
      unacked = 0;
    }
  }

  function written(bytes) {
    unacked += bytes;
    if (unacked >= ACK_EVERY) flushAck();
    else if (!ackTimer) ackTimer = setTimeout(flushAck, 20);
  }

  // Large pastes go in pieces: daphne refuses a WebSocket message over 1 MiB.
  function sendBytes(text) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const bytes = encoder.encode(text);
    for (let start = 0; start < bytes.length; start += FRAME_BYTES) {
      socket.send(bytes.subarray(start, start + FRAME_BYTES));
    }
  }

  async function ticket() {
    const fields = new URLSearchParams();
    if (workspace) fields.set("workspace", workspace);
    if (owner) fields.set("owner", owner);
    if (allowTyping && allowTyping.checked) fields.set("typing", "yes");
    try {
      return await call("POST", ticketsUrl, fields);
    } catch (error) {
      if (error.status === 403 || error.status === 401) {
        throw Object.assign(new Error("Your session ended: log in again."), { final: true });
      }
      if (error.status === 404) {
        throw Object.assign(new Error(`${error.message} This terminal cannot open.`), { final: true });
      }
      throw error;
    }
  }

  async function connect() {
    setStatus(socket ? "reconnecting" : "connecting");
    let issued;
    try {
      issued = await ticket();
    } catch (error) {
      if (error.final) {
        stopped = true;
        setStatus("closed", error.message);
        return;
      }
      return retry();
    }
    const ws = new WebSocket(`${socketUrl(issued.ws_url)}&tab=${tabId()}`);
    ws.binaryType = "arraybuffer";
    socket = ws;
    unacked = 0;

    ws.onopen = () => {
      fit.fit();
      sendJSON({ type: "resize", cols: term.cols, rows: term.rows });
      clearInterval(pingTimer);
      pingTimer = setInterval(() => sendJSON({ type: "ping" }), PING_EVERY);
    };
    ws.onmessage = (event) => {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data);
        if (message.type === "status") {
          setStatus(message.state, message.detail);
          // Only a session that lasts resets the backoff: one that ends at once
          // (a shell that cannot start) must not reconnect in a tight loop.
          if (["connected", "watched", "idle", "warned"].includes(message.state)) {
            clearTimeout(stableTimer);
            stableTimer = setTimeout(() => (backoff = 500), STABLE_AFTER);
          }
        } else if (message.type === "error") {
          term.write(`\r\n\x1b[31m${message.message}\x1b[0m\r\n`);
          lastFailure = message.message;
          setStatus("failed", message.message);
        }
        return;
      }
      const data = new Uint8Array(event.data);
      term.write(data, () => written(data.length));
    };
    ws.onclose = (event) => {
      clearInterval(pingTimer);
      clearTimeout(stableTimer);
      if (socket !== ws) return;
      if (event.code === 4403) {
        stopped = true;
        setStatus("closed", "This terminal is not yours to open.");
        return;
      }
      if (event.code === BOX_STOPPED) {
        stopped = asleep = true; // its status message said why
        return;
      }
      if (!stopped) retry();
    };
  }

  function retry() {
    setStatus("reconnecting", lastFailure ? `Reconnecting… (${lastFailure})` : "");
    lastFailure = "";
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF);
  }

  // A keystroke or a click wakes a terminal whose box stopped; that key
  // only wakes it, it is not typed into the new shell.
  function wake() {
    if (!asleep) return false;
    asleep = stopped = false;
    backoff = 500;
    connect();
    return true;
  }
  screen.addEventListener("click", wake);
  // Staff switch between watching and typing: a new connection, recorded.
  allowTyping?.addEventListener("change", () => socket && socket.close());
  status.addEventListener("click", wake);

  term.onData((data) => wake() || sendBytes(data));
  term.onBinary((data) => {
    const bytes = Uint8Array.from(data, (c) => c.charCodeAt(0));
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(bytes);
  });
  term.onResize(({ cols, rows }) => sendJSON({ type: "resize", cols, rows }));

  term.attachCustomKeyEventHandler((event) => {
    if (event.type !== "keydown" || !event.shiftKey || !(event.ctrlKey || event.metaKey)) return true;
    const key = event.key.toLowerCase();
    if (key === "c" && term.hasSelection()) {
      navigator.clipboard?.writeText(term.getSelection());
      event.preventDefault();
      return false;
    }
    if (key === "v") {
      navigator.clipboard?.readText().then((text) => term.paste(text));
      event.preventDefault();
      return false;
    }
    return true;
  });

  new ResizeObserver(() => fit.fit()).observe(screen);
  window.addEventListener("resize", () => fit.fit());

  connect();
  return term;
}

const root = document.querySelector("[data-terminal]");
if (root) startTerminal(root).then((term) => (window.spoonTerminal = term));
