// Previews on Spoon's pages: a box's server address (as the server prints
// it) turned into its preview's, and the ports list with its sharing.
import { call } from "./api.js";

const LOCAL = /^https?:\/\/(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1?\])(?::(\d+))?(\/[^\s]*)?$/i;

// "http://0.0.0.0:8080/x" -> "http://8080--alice.localhost:8000/x"; null
// when it is not a server in the box, or previews are off.
export function previewOf(uri, pattern) {
  const found = pattern && LOCAL.exec(uri);
  if (!found) return null;
  return pattern.replace("{port}", found[1] || "80") + (found[2] || "/");
}

const SHARING = [
  ["private", "Only you"],
  ["users", "Signed-in users"],
  ["public", "Anyone with the link"],
];

function cell(row, ...children) {
  const td = document.createElement("td");
  td.append(...children);
  row.append(td);
  return td;
}

function button(text, action, kind = "secondary") {
  const el = document.createElement("button");
  el.type = "button";
  el.className = kind;
  el.textContent = text;
  el.addEventListener("click", action);
  return el;
}

async function copy(text) {
  await navigator.clipboard?.writeText(text);
}

export function portsList(root) {
  const rows = root.querySelector("[data-ports-rows]");
  const table = root.querySelector("[data-ports-table]");
  const empty = root.querySelector("[data-ports-empty]");
  const message = root.querySelector("[data-ports-message]");
  const say = (text, isError = false) => {
    message.textContent = text;
    message.classList.toggle("error", isError);
  };

  function row(port) {
    const tr = document.createElement("tr");
    tr.dataset.port = port.port;
    const open = document.createElement("a");
    open.className = "button";
    open.href = port.url;
    open.target = "_blank";
    open.rel = "noopener";
    open.textContent = "Open";
    const where = document.createElement("span");
    where.className = "muted";
    if (!port.listening) where.textContent = " (nothing listens now)";
    else if (!port.reachable) where.textContent = ` (on ${port.address} only: listen on 0.0.0.0)`;
    cell(tr, document.createTextNode(port.port), where);
    cell(tr, port.process || "");
    const select = document.createElement("select");
    select.setAttribute("aria-label", `Who may open port ${port.port}`);
    for (const [value, text] of SHARING) select.add(new Option(text, value, false, value === port.sharing));
    select.addEventListener("change", () => share(port.port, select.value));
    const actions = [open, select];
    if (port.sharing === "public") {
      actions.push(button("Copy link", async () => {
        await copy(port.link);
        say(`The link to port ${port.port} is copied: anyone who has it can open it.`);
      }));
      actions.push(button("New link", async () => {
        if (!window.confirm(`Make a new link for port ${port.port}? The one you gave out stops working.`)) return;
        await change(() => call("POST", `/api/previews/ports/${port.port}/link`),
          `Port ${port.port} has a new link; the old one no longer works.`);
      }));
    }
    const actionsCell = cell(tr, ...actions);
    actionsCell.className = "port-actions";
    return tr;
  }

  async function change(request, done) {
    try {
      await request();
      say(done);
    } catch (error) {
      say(error.message, true);
    }
    await refresh();
  }

  function share(port, sharing) {
    const said = {
      private: `Port ${port} is yours alone again.`,
      users: `Anyone signed in to Spoon can open port ${port}.`,
      public: `Anyone with the link can open port ${port}: copy it below.`,
    }[sharing];
    return change(() => call("PUT", `/api/previews/ports/${port}`, { sharing }), said);
  }

  async function refresh() {
    try {
      const { running, ports } = await call("GET", "/api/previews/ports/");
      rows.replaceChildren(...ports.map(row));
      table.hidden = ports.length === 0;
      empty.hidden = ports.length > 0;
      empty.textContent = running
        ? "Nothing listens in your box now. Start a server (python3 -m http.server 8080, npm run dev) and it shows here."
        : "Your box is stopped: servers show here while it runs.";
    } catch (error) {
      say(error.message, true);
    }
  }

  root.querySelector("[data-ports-refresh]").addEventListener("click", refresh);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  setInterval(() => { if (!document.hidden) refresh(); }, 15000);
  refresh();
}
