// The editor: one overlay file at a time in CodeMirror 6, highlighted by its
// name; binary files are shown as a note and kept byte for byte.
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
import { $, call, encodePath, finished, lastLine, root, saveFile, say } from "./page.js";

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

const language = new Compartment();
const readOnly = new Compartment();
const BINARY_NOTE = "(a binary file: kept byte for byte; upload a new one to replace it)";
let current = null; // {path, executable, binary, base64, fromHome}
let saved = "";
const savedListeners = [];

export const editor = new EditorView({
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

// The file open in the editor ({path, executable, binary}), or null.
export const currentFile = () => current;

// listener(path, applying) runs after each save.
export const onSaved = (listener) => savedListeners.push(listener);

function markDirty() {
  const unchanged = editor.state.doc.toString() === saved;
  $("[data-save]").disabled = !current || (current.fromHome ? false : current.binary || unchanged);
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

function highlight() {
  for (const button of root.querySelectorAll("[data-file]")) {
    button.classList.toggle("current", current && button.dataset.file === current.path);
  }
}

function show(path, content, executable, binary = false, extra = {}) {
  current = { path, executable, binary, ...extra };
  saved = binary ? BINARY_NOTE : content;
  $("[data-path]").textContent = `~/${path}`;
  $("[data-executable]").checked = executable;
  $("[data-file-actions]").hidden = false;
  replaceText(saved, path, binary);
  markDirty();
  highlight();
}

export async function open(path) {
  try {
    const file = await call("GET", `/files/${encodePath(path)}`);
    const binary = file.content === undefined;
    show(path, binary ? "" : file.content, file.executable, binary);
    say("");
  } catch (error) {
    say(error.message, true);
  }
}

// A file of the box's home that the overlay does not have yet (read from the
// box): shown as it is there, saved into the overlay only when asked, so
// saving it unchanged changes nothing in the home.
export function showFromHome(file) {
  const binary = file.content === undefined;
  show(file.path, binary ? "" : file.content, file.executable, binary, {
    fromHome: true,
    base64: file.content_base64,
  });
  $("[data-path]").textContent = `~/${file.path} (as your box's home has it: not in your dotfiles yet)`;
}

export async function save() {
  if (!current || (current.binary && !current.base64)) return;
  const body = current.binary
    ? { content_base64: current.base64 }
    : { content: editor.state.doc.toString() };
  const path = current.path;
  try {
    const result = await saveFile(path, { ...body, executable: $("[data-executable]").checked });
    current.fromHome = false;
    $("[data-path]").textContent = `~/${path}`;
    saved = editor.state.doc.toString();
    markDirty();
    say(result.applying ? `Saved ~/${path}; writing it into your box…` : `Saved ~/${path}. ` +
      "Your box is not running: it gets the file when it starts.");
    for (const listener of savedListeners) listener(path, result.applying);
    if (result.run) {
      const run = await finished(result.run);
      if (run.status === "succeeded") say(`Saved ~/${path} and wrote it into your box.`);
      else say(`Saved ~/${path}, but writing it into your box failed: ${lastLine(run)}`, true);
    }
  } catch (error) {
    say(error.message, true);
  }
}

// A deleted file or folder leaves the editor empty if it held one of its files.
export function closeIfUnder(path) {
  if (current && (current.path === path || current.path.startsWith(path + "/"))) {
    current = null;
    $("[data-file-actions]").hidden = true;
    $("[data-path]").textContent = "";
    replaceText("", null, false);
  }
}

export { highlight as highlightTree };

$("[data-save]").addEventListener("click", save);
$("[data-executable]").addEventListener("change", () => {
  $("[data-save]").disabled = !current;
});
