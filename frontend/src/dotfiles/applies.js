// "Apply now", the log of a run as it grows, and the last runs.
import { $, call, say } from "./page.js";

const logView = $("[data-log]");

// Spoon restarting (a deploy) answers nothing, or 502/503 from its proxy,
// for a moment: the apply goes on in the box, so ask again meanwhile.
const RESTARTING = [undefined, 502, 503, 504];

async function follow(id) {
  let misses = 0;
  for (;;) {
    let run;
    try {
      run = await call("GET", `/runs/${id}`);
      misses = 0;
    } catch (error) {
      if (!RESTARTING.includes(error.status) || ++misses > 60) throw error;
      await new Promise((ok) => setTimeout(ok, 2000));
      continue;
    }
    logView.textContent = run.log || "(no output yet)";
    logView.scrollTop = logView.scrollHeight;
    $("[data-run-status]").textContent = `${run.trigger}: ${run.status}` +
      (run.exit_code !== null ? ` (exit ${run.exit_code})` : "");
    $("[data-run-status]").dataset.status = run.status;
    const notesView = $("[data-run-notes]");
    notesView.textContent = run.status === "running" ? "" : notes(run.log);
    notesView.dataset.status = run.status;
    if (run.status !== "running") break;
    await new Promise((ok) => setTimeout(ok, 400));
  }
  refreshRuns();
}

// What the run's errors, warnings and hints say, as sentences.
function notes(log) {
  const note = /^spoon: (error|warning|hint): /;
  return log
    .split("\n")
    .filter((text) => note.test(text))
    .map((text) => text.replace(note, ""))
    .map((text) => text[0].toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : "."))
    .join(" ");
}

$("[data-apply]").addEventListener("click", async () => {
  $("[data-apply]").disabled = true;
  logView.textContent = "Starting your box…";
  try {
    const { run } = await call("POST", "/apply");
    await follow(run);
  } catch (error) {
    logView.textContent = error.message;
    say(error.message, true);
  } finally {
    $("[data-apply]").disabled = false;
  }
});

export async function refreshRuns() {
  const { runs } = await call("GET", "/runs/");
  const list = $("[data-runs]");
  list.replaceChildren();
  for (const run of runs.slice(0, 10)) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = `run run-${run.status}`;
    const when = new Date(run.started_at).toLocaleString();
    button.textContent = `${when} · ${run.trigger} · ${run.status}` +
      (run.exit_code !== null && run.exit_code !== 0 ? ` (exit ${run.exit_code})` : "");
    button.addEventListener("click", () => follow(run.id));
    item.append(button);
    list.append(item);
  }
}
