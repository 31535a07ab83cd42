// A workspace's runs: start a command, follow its output, cancel it.
import { call, socketUrl } from "./api.js";
import { words } from "./words.js";

const root = document.querySelector("[data-runs-root]");
const url = root.dataset.runsUrl;
const $ = (selector) => root.querySelector(selector);
let following = null;
let listTimer = null;
let clockTimer = null; // the followed run's duration goes on while it runs
const FINISHED = ["succeeded", "failed", "cancelled"];

// How long a run took, or has been running.
function duration(run) {
  if (!run.started_at) return "";
  const end = run.finished_at ? new Date(run.finished_at) : new Date();
  const seconds = Math.max(0, (end - new Date(run.started_at)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// What a run is, in a few words: the command, or the agent and the prompt.
function label(run) {
  return run.agent ? `${run.agent}: “${run.prompt}”` : run.argv.join(" ");
}

function exitText(run) {
  return run.exit_code !== null && run.exit_code !== undefined ? ` (exit ${run.exit_code})` : "";
}

function showStatus(run) {
  const title = $("[data-run-title]");
  const took = duration(run);
  title.textContent = `${label(run)}: ${run.status}${exitText(run)}` +
    (took ? `, ${took}` : "") + (run.error ? ` — ${run.error}` : "");
  title.dataset.status = run.status;
  $("[data-cancel]").hidden = FINISHED.includes(run.status);
}

// An agent turn reads as a conversation: the agent's messages, each command
// with its output and exit code, tool calls, and errors; never JSON.
const SHOWN_AS = {
  message: "Agent", reasoning: "Thinking", tool: "Tool", error: "Error",
  warning: "Warning", retry: "Retrying", raw: "Output",
};

function showTranscript(entries) {
  const list = $("[data-transcript]");
  list.replaceChildren();
  list.hidden = !entries || entries.length === 0;
  let command = null; // the command block that output and an exit code join
  for (const entry of entries || []) {
    if (entry.kind === "status") continue;
    if (entry.kind === "command" && entry.text.startsWith("$ ")) {
      command = document.createElement("li");
      command.className = "entry entry-command";
      const line = document.createElement("code");
      line.textContent = entry.text;
      command.append(line);
      list.append(command);
      continue;
    }
    if (command && (entry.kind === "output" || entry.kind === "command")) {
      if (entry.kind === "output") {
        const output = document.createElement("pre");
        output.textContent = entry.text;
        command.append(output);
      } else {
        const exit = document.createElement("span");
        exit.className = entry.text === "(exit 0)" || entry.text === "(done)" ? "exit ok" : "exit error";
        exit.textContent = entry.text;
        command.append(exit);
        command = null;
      }
      continue;
    }
    const item = document.createElement("li");
    item.className = `entry entry-${entry.kind}`;
    const who = document.createElement("strong");
    who.textContent = SHOWN_AS[entry.kind] || entry.kind;
    const text = document.createElement(entry.kind === "output" || entry.kind === "raw" ? "pre" : "p");
    text.textContent = entry.text;
    item.append(who, text);
    list.append(item);
  }
  $("[data-run-output]").hidden = !list.hidden;
}

function showOutput(run) {
  $("[data-run-output]").textContent = run.output + (run.output_truncated ? "\n[output cut at the limit]" : "");
}

function appendOutput(text) {
  const output = $("[data-run-output]");
  output.textContent += text;
  output.scrollTop = output.scrollHeight;
}

// Live over a WebSocket (stored output first, then each piece as it comes);
// polling only if the socket cannot be had.
async function follow(id) {
  following = id;
  const run = await call("GET", `${url}${id}`);
  if (following !== id) return;
  clearInterval(clockTimer);
  if (FINISHED.includes(run.status)) {
    // Nothing more will come (it may have ended while its Spoon process
    // restarted): what is stored is all of it, shown with its status.
    showOutput(run);
    showTranscript(run.transcript);
    showStatus(run);
    return;
  }
  showStatus(run);
  clockTimer = setInterval(() => {
    if (following === id && run.status === "running") showStatus(run);
  }, 1000);
  $("[data-run-output]").textContent = "";
  showTranscript([]);
  let socket;
  try {
    const { ws_url } = await call("POST", `${url}${id}/ticket`);
    socket = new WebSocket(socketUrl(ws_url));
  } catch (error) {
    return poll(id);
  }
  socket.onmessage = (event) => {
    if (following !== id) return socket.close();
    const message = JSON.parse(event.data);
    if (message.type === "output") appendOutput(message.text);
    if (message.type === "status") {
      // Statuses come as they change (queued, running), the final one last.
      const now = new Date().toISOString();
      if (message.status === "running" && !run.started_at) run.started_at = now;
      if (FINISHED.includes(message.status) && !run.finished_at) run.finished_at = now;
      Object.assign(run, message);
      showStatus(run);
      refresh();
      if (FINISHED.includes(message.status) && run.agent) {
        call("GET", `${url}${id}`).then((done) => showTranscript(done.transcript));
      }
    }
  };
  let opened = false;
  socket.onopen = () => { opened = true; };
  // A socket that never opened: poll instead. One that closed before the run
  // ended (its Spoon process restarted for a deploy): follow it again, on
  // whichever process answers now; the stored output comes first again.
  socket.onclose = () => {
    if (following !== id) return;
    if (!opened) poll(id);
    else if (!FINISHED.includes(run.status)) followAgain(id);
  };
}

// Again in a second, and on until a Spoon process answers.
function followAgain(id) {
  setTimeout(() => {
    if (following === id) follow(id).catch(() => followAgain(id));
  }, 1000);
}

async function poll(id) {
  clearInterval(clockTimer); // each answer below shows the run as it is
  for (;;) {
    const run = await call("GET", `${url}${id}`);
    if (following !== id) return;
    showOutput(run);
    showStatus(run);
    if ($("[data-cancel]").hidden) break;
    await new Promise((ok) => setTimeout(ok, 300));
  }
  refresh();
}

// The last runs, with their status, exit code and duration; while any is
// queued or running the list refreshes itself.
async function refresh() {
  clearTimeout(listTimer);
  const { runs } = await call("GET", url);
  const list = $("[data-run-list]");
  list.replaceChildren();
  for (const run of runs.slice(0, 15)) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = `run run-${run.status}`;
    button.dataset.runStatus = run.status;
    const took = duration(run);
    button.textContent = `${new Date(run.created_at).toLocaleString()} · ${label(run)} · ` +
      `${run.status}${exitText(run)}` + (took ? ` · ${took}` : "");
    button.addEventListener("click", () => follow(run.id));
    item.append(button);
    list.append(item);
  }
  if (runs.some((run) => !FINISHED.includes(run.status))) listTimer = setTimeout(refresh, 2000);
}

$("[data-run-form]").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("[data-run-error]").textContent = "";
  try {
    const run = await call("POST", url, { argv: words(event.target.elements.command.value) });
    follow(run.id);
  } catch (error) {
    $("[data-run-error]").textContent = error.message;
  }
});

$("[data-turn-form]").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("[data-turn-error]").textContent = "";
  try {
    const run = await call("POST", url, { prompt: event.target.elements.prompt.value });
    follow(run.id);
  } catch (error) {
    $("[data-turn-error]").textContent = error.message;
  }
});

$("[data-cancel]").addEventListener("click", async () => {
  if (following !== null) await call("POST", `${url}${following}/cancel`);
});

refresh();
// A link to one run (from the landing page) opens it: #run-<id>.
const linked = /^#run-(\d+)$/.exec(location.hash);
if (linked) follow(Number(linked[1]));
