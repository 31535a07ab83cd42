// Settings -> Dotfiles: the overlay's file tree, a CodeMirror editor, uploads,
// the repository form, "Apply now" with its log as it grows, and the last runs.
// Everything goes through the JSON API under /api/dotfiles/.
import { EditorView, basicSetup } from "codemirror";
import { EditorState, Compartment } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { StreamLanguage } from "@codemirror/language";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { json } from "@codemirror/lang-json";
import { markdown } from "@codemirror/lang-markdown";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { toml } from "@codemirror/legacy-modes/mode/toml";
import { lua } from "@codemirror/legacy-modes/mode/lua";
import { properties } from "@codemirror/legacy-modes/mode/properties";
import { yaml } from "@codemirror/legacy-modes/mode/yaml";
import { oneDark } from "@codemirror/theme-one-dark";
import { call as request } from "./api.js";

const API = "/api/dotfiles";
const root = document.querySelector("[data-dotfiles]");
const maxBytes = Number(root.dataset.maxBytes);
const $ = (selector) => root.querySelector(selector);

const call = (method, path, data) => request(method, API + path, data);

const encodePath = (path) => path.split("/").map(encodeURIComponent).join("/");

function say(text, isError = false) {
  const line = $("[data-message]");
  line.textContent = text;
  line.classList.toggle("error", isError);
}

// Syntax highlighting by file name.
function languageFor(path) {
  const name = path.split("/").pop();
  if (/\.(m?js|cjs|ts|tsx|jsx)$/.test(name)) return javascript({ typescript: /tsx?$/.test(name) });
  if (/\.py$/.test(name)) return python();
  if (/\.json$/.test(name)) return json();
  if (/\.(md|markdown)$/.test(name)) return markdown();
  if (/\.toml$/.test(name)) return StreamLanguage.define(toml);
  if (/\.lua$/.test(name)) return StreamLanguage.define(lua);
  if (/\.ya?ml$/.test(name)) return StreamLanguage.define(yaml);
  if (/(\.(ini|conf|cfg)|gitconfig|\.editorconfig)$/.test(name)) return StreamLanguage.define(properties);
  if (/(\.(sh|bash|zsh)|rc|profile|_logout|aliases)$/.test(name) || !name.includes(".")) {
    return StreamLanguage.define(shell);
  }
  return [];
}

// The editor.
const language = new Compartment();
const readOnly = new Compartment();
const BINARY_NOTE = "(a binary file: kept byte for byte; upload a new one to replace it)";
let current = null; // {path, executable, binary}
let saved = "";
const editor = new EditorView({
  parent: $("[data-editor]"),
  state: EditorState.create({
    doc: "",
    extensions: [
      basicSetup,
      oneDark,
      language.of([]),
      readOnly.of(EditorState.readOnly.of(true)),
      keymap.of([{ key: "Mod-s", preventDefault: true, run: () => (save(), true) }]),
      EditorView.updateListener.of((update) => update.docChanged && markDirty()),
    ],
  }),
});

function markDirty() {
  $("[data-save]").disabled = !current || current.binary || editor.state.doc.toString() === saved;
}

function replaceText(text, path, binary) {
  editor.dispatch({
    changes: { from: 0, to: editor.state.doc.length, insert: text },
    effects: [
      language.reconfigure(path && !binary ? languageFor(path) : []),
      readOnly.reconfigure(EditorState.readOnly.of(!path || binary)),
    ],
  });
}

function show(path, content, executable, binary = false) {
  current = { path, executable, binary };
  saved = binary ? BINARY_NOTE : content;
  $("[data-path]").textContent = `~/${path}`;
  $("[data-executable]").checked = executable;
  $("[data-file-actions]").hidden = false;
  replaceText(saved, path, binary);
  markDirty();
  highlightTree();
}

async function open(path) {
  try {
    const file = await call("GET", `/files/${encodePath(path)}`);
    const binary = file.content === undefined;
    show(path, binary ? "" : file.content, file.executable, binary);
    say("");
  } catch (error) {
    say(error.message, true);
  }
}

async function save() {
  if (!current || current.binary) return;
  try {
    const result = await call("PUT", `/files/${encodePath(current.path)}`, {
      content: editor.state.doc.toString(),
      executable: $("[data-executable]").checked,
    });
    saved = editor.state.doc.toString();
    markDirty();
    say(result.applying ? `Saved ~/${current.path}; writing it into your box…` : `Saved ~/${current.path}.`);
    refreshFiles();
    if (result.applying) setTimeout(refreshRuns, 1500);
  } catch (error) {
    say(error.message, true);
  }
}

// The file tree.
let knownFiles = [];
const emptyFolders = new Set();

function tree() {
  const top = { folders: new Map(), files: [] };
  const folder = (parts) => {
    let node = top;
    for (const part of parts) {
      if (!node.folders.has(part)) node.folders.set(part, { folders: new Map(), files: [] });
      node = node.folders.get(part);
    }
    return node;
  };
  for (const path of emptyFolders) folder(path.split("/"));
  for (const file of knownFiles) {
    const parts = file.path.split("/");
    folder(parts.slice(0, -1)).files.push(file);
  }
  return top;
}

function render(node, prefix, list) {
  for (const [name, child] of [...node.folders].sort()) {
    const item = document.createElement("li");
    const label = document.createElement("button");
    label.type = "button";
    label.className = "tree-folder";
    label.textContent = `${name}/`;
    label.dataset.folder = prefix + name;
    item.append(label);
    const inner = document.createElement("ul");
    render(child, `${prefix}${name}/`, inner);
    item.append(inner);
    list.append(item);
  }
  for (const file of node.files.sort((a, b) => a.path.localeCompare(b.path))) {
    const item = document.createElement("li");
    const link = document.createElement("button");
    link.type = "button";
    link.className = "tree-file";
    link.dataset.file = file.path;
    link.textContent = file.path.split("/").pop() + (file.executable ? " *" : "");
    link.title = `${file.size} bytes`;
    item.append(link);
    list.append(item);
  }
}

function highlightTree() {
  for (const button of root.querySelectorAll("[data-file]")) {
    button.classList.toggle("current", current && button.dataset.file === current.path);
  }
}

async function refreshFiles() {
  knownFiles = (await call("GET", "/files/")).files;
  for (const folder of [...emptyFolders]) {
    if (knownFiles.some((f) => f.path.startsWith(folder + "/"))) emptyFolders.delete(folder);
  }
  const list = $("[data-tree]");
  list.replaceChildren();
  render(tree(), "", list);
  highlightTree();
}

let selectedFolder = "";
$("[data-tree]").addEventListener("click", (event) => {
  const file = event.target.closest("[data-file]");
  const folder = event.target.closest("[data-folder]");
  if (file) open(file.dataset.file);
  if (folder) {
    selectedFolder = folder.dataset.folder;
    say(`Folder ~/${selectedFolder} selected: new files and uploads go there.`);
  }
});

function askPath(question, start) {
  const answer = prompt(question, start);
  return answer ? answer.replace(/^~\//, "").replace(/^\/+/, "") : null;
}

$("[data-new-file]").addEventListener("click", async () => {
  const path = askPath("New file (relative to your home):", selectedFolder ? `${selectedFolder}/` : ".");
  if (!path) return;
  try {
    await call("PUT", `/files/${encodePath(path)}`, { content: "", executable: false });
    await refreshFiles();
    open(path);
  } catch (error) {
    say(error.message, true);
  }
});

$("[data-new-folder]").addEventListener("click", () => {
  const path = askPath("New folder (relative to your home):", selectedFolder ? `${selectedFolder}/` : "");
  if (!path) return;
  emptyFolders.add(path.replace(/\/+$/, ""));
  selectedFolder = path.replace(/\/+$/, "");
  refreshFiles();
  say(`Folder ~/${selectedFolder}: it is kept once a file is in it.`);
});

$("[data-rename]").addEventListener("click", async () => {
  if (!current) return;
  const target = askPath(`Rename ~/${current.path} to:`, current.path);
  if (!target || target === current.path) return;
  try {
    await call("POST", "/rename", { from: current.path, to: target });
    await refreshFiles();
    open(target);
  } catch (error) {
    say(error.message, true);
  }
});

$("[data-rename-folder]").addEventListener("click", async () => {
  if (!selectedFolder) return say("Select a folder in the tree first.", true);
  const target = askPath(`Rename the folder ~/${selectedFolder} to:`, selectedFolder);
  if (!target || target === selectedFolder) return;
  try {
    await call("POST", "/rename", { from: selectedFolder, to: target.replace(/\/+$/, "") });
    selectedFolder = target;
    await refreshFiles();
  } catch (error) {
    say(error.message, true);
  }
});

async function remove(path, what) {
  if (!confirm(`Delete ${what} ~/${path} from your dotfiles?`)) return;
  try {
    await call("DELETE", `/files/${encodePath(path)}`);
    emptyFolders.delete(path);
    if (current && (current.path === path || current.path.startsWith(path + "/"))) {
      current = null;
      $("[data-file-actions]").hidden = true;
      $("[data-path]").textContent = "";
      replaceText("", null, false);
    }
    await refreshFiles();
    say(`Deleted ~/${path}.`);
  } catch (error) {
    say(error.message, true);
  }
}

$("[data-delete]").addEventListener("click", () => current && remove(current.path, "the file"));
$("[data-delete-folder]").addEventListener("click", () =>
  selectedFolder ? remove(selectedFolder, "the folder") : say("Select a folder in the tree first.", true),
);
$("[data-save]").addEventListener("click", save);
$("[data-executable]").addEventListener("change", () => {
  $("[data-save]").disabled = !current;
});

// Uploads: files, whole folders, and drag and drop, keeping relative paths.
function toBase64(buffer) {
  let binary = "";
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

async function upload(entries) {
  const refused = [];
  let done = 0;
  for (const { file, path } of entries) {
    const target = (selectedFolder ? `${selectedFolder}/` : "") + path;
    if (file.size > maxBytes) {
      refused.push(`${target} (${file.size} bytes, over ${maxBytes})`);
      continue;
    }
    try {
      const buffer = await file.arrayBuffer();
      await call("PUT", `/files/${encodePath(target)}`, {
        content_base64: toBase64(buffer),
        executable: false,
      });
      done += 1;
    } catch (error) {
      refused.push(`${target}: ${error.message}`);
    }
  }
  await refreshFiles();
  say(
    `Uploaded ${done} file${done === 1 ? "" : "s"}.` + (refused.length ? ` Refused: ${refused.join("; ")}` : ""),
    refused.length > 0,
  );
}

for (const input of root.querySelectorAll("[data-upload]")) {
  input.addEventListener("change", () => {
    const entries = [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
    input.value = "";
    upload(entries);
  });
}

async function walk(entry, prefix, out) {
  if (entry.isFile) {
    out.push({ file: await new Promise((ok, fail) => entry.file(ok, fail)), path: prefix + entry.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
      if (!batch.length) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`, out);
    }
  }
}

const drop = $("[data-drop]");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("dragging");
});
drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
drop.addEventListener("drop", async (event) => {
  event.preventDefault();
  drop.classList.remove("dragging");
  const entries = [];
  for (const item of event.dataTransfer.items) {
    const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
    if (entry) await walk(entry, "", entries);
  }
  upload(entries);
});

// The repository form.
const form = $("[data-config]");
async function loadConfig() {
  const config = await call("GET", "/config");
  for (const field of ["repo_url", "ref", "setup_path"]) form.elements[field].value = config[field];
  form.elements.enabled.checked = config.enabled;
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  try {
    await call("PUT", "/config", {
      repo_url: form.elements.repo_url.value,
      ref: form.elements.ref.value,
      setup_path: form.elements.setup_path.value,
      enabled: form.elements.enabled.checked,
    });
    say("Repository settings saved; they run at the next apply.");
  } catch (error) {
    const slot = error.field && form.querySelector(`[data-error-for=${error.field}]`);
    if (slot) slot.textContent = error.message;
    say(error.message, true);
  }
});

// Runs: "Apply now", its log as it grows, and the last runs.
const logView = $("[data-log]");
async function follow(id) {
  for (;;) {
    const run = await call("GET", `/runs/${id}`);
    logView.textContent = run.log || "(no output yet)";
    logView.scrollTop = logView.scrollHeight;
    $("[data-run-status]").textContent = `${run.trigger}: ${run.status}` +
      (run.exit_code !== null ? ` (exit ${run.exit_code})` : "");
    $("[data-run-status]").dataset.status = run.status;
    if (run.status !== "running") break;
    await new Promise((ok) => setTimeout(ok, 400));
  }
  refreshRuns();
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

async function refreshRuns() {
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

refreshFiles();
loadConfig();
refreshRuns();
window.spoonDotfiles = { editor, open, save };
