// A workspace's runs: start a command, follow its output, cancel it.
const root = document.querySelector("[data-runs-root]");
const url = root.dataset.runsUrl;
const $ = (selector) => root.querySelector(selector);
let following = null;

function csrfToken() {
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

async function call(method, path, data) {
  const options = { method, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" };
  if (data !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(data);
  }
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), body);
  return body;
}

// Words as a shell would split them, with quotes; no expansion, no pipes.
function words(line) {
  const out = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let match;
  while ((match = pattern.exec(line))) {
    out.push(match[1] !== undefined ? match[1].replace(/\\(.)/g, "$1") : match[2] ?? match[3]);
  }
  return out;
}

async function follow(id) {
  following = id;
  for (;;) {
    const run = await call("GET", `${url}${id}`);
    if (following !== id) return;
    $("[data-run-title]").textContent = `${run.argv.join(" ")}: ${run.status}` +
      (run.exit_code !== null ? ` (exit ${run.exit_code})` : "") + (run.error ? ` — ${run.error}` : "");
    $("[data-run-title]").dataset.status = run.status;
    const output = $("[data-run-output]");
    output.textContent = run.output + (run.output_truncated ? "\n[output cut at the limit]" : "");
    output.scrollTop = output.scrollHeight;
    $("[data-cancel]").hidden = ["succeeded", "failed", "cancelled"].includes(run.status);
    if ($("[data-cancel]").hidden) break;
    await new Promise((ok) => setTimeout(ok, 300));
  }
  refresh();
}

async function refresh() {
  const { runs } = await call("GET", url);
  const list = $("[data-run-list]");
  list.replaceChildren();
  for (const run of runs.slice(0, 15)) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = `run run-${run.status}`;
    button.textContent = `${new Date(run.created_at).toLocaleString()} · ${run.argv.join(" ")} · ${run.status}`;
    button.addEventListener("click", () => follow(run.id));
    item.append(button);
    list.append(item);
  }
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

$("[data-cancel]").addEventListener("click", async () => {
  if (following !== null) await call("POST", `${url}${following}/cancel`);
});

refresh();
