// The file tree and what it does to files and folders: new, rename, delete.
// Folders exist through the files in them; an empty one made here is kept
// on the page until a file goes into it.
import { closeIfUnder, currentFile, highlightTree, open, showFromHome } from "./editor.js";
import { $, call, encodePath, saveFile, say } from "./page.js";

let knownFiles = [];
const emptyFolders = new Set();
let selected = "";

// The folder new files and uploads go into ("" for the home).
export const selectedFolder = () => selected;

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

export async function refreshFiles() {
  knownFiles = (await call("GET", "/files/")).files;
  for (const folder of [...emptyFolders]) {
    if (knownFiles.some((f) => f.path.startsWith(folder + "/"))) emptyFolders.delete(folder);
  }
  const list = $("[data-tree]");
  list.replaceChildren();
  render(tree(), "", list);
  highlightTree();
}

$("[data-tree]").addEventListener("click", (event) => {
  const file = event.target.closest("[data-file]");
  const folder = event.target.closest("[data-folder]");
  if (file) open(file.dataset.file);
  if (folder) {
    selected = folder.dataset.folder;
    say(`Folder ~/${selected} selected: new files and uploads go there.`);
  }
});

// "~/x" means x in the home; anything else goes to the server as typed, so
// that it says what is wrong with it (an absolute path, "..").
function askPath(question, start) {
  const answer = prompt(question, start);
  return answer ? answer.replace(/^~\//, "") : null;
}

// A file of the home, or null when the home has none at that path.
async function fromHome(path) {
  try {
    return await call("GET", `/home/${encodePath(path)}`);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

$("[data-new-file]").addEventListener("click", async () => {
  const path = askPath("New file (relative to your home):", selected ? `${selected}/` : ".");
  if (!path) return;
  try {
    const existing = await fromHome(path);
    if (existing) {
      showFromHome(existing);
      say(`Your home has ~/${path} already: here it is. Save to keep it in your dotfiles; ` +
        "saved unchanged, your home does not change.");
      return;
    }
    await saveFile(path, { content: "", executable: false });
    await refreshFiles();
    open(path);
  } catch (error) {
    say(error.message, true);
  }
});

$("[data-new-folder]").addEventListener("click", () => {
  const path = askPath("New folder (relative to your home):", selected ? `${selected}/` : "");
  if (!path) return;
  emptyFolders.add(path.replace(/\/+$/, ""));
  selected = path.replace(/\/+$/, "");
  refreshFiles();
  say(`Folder ~/${selected}: it is kept once a file is in it.`);
});

$("[data-rename]").addEventListener("click", async () => {
  const current = currentFile();
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
  if (!selected) return say("Select a folder in the tree first.", true);
  const target = askPath(`Rename the folder ~/${selected} to:`, selected);
  if (!target || target === selected) return;
  try {
    await call("POST", "/rename", { from: selected, to: target.replace(/\/+$/, "") });
    selected = target;
    await refreshFiles();
  } catch (error) {
    say(error.message, true);
  }
});

async function remove(path, what) {
  const question = `Delete ${what} ~/${path} from your dotfiles? It goes from your box's home ` +
    "too, unless you changed it there, and whatever it replaced comes back.";
  if (!confirm(question)) return;
  try {
    await call("DELETE", `/files/${encodePath(path)}`);
    emptyFolders.delete(path);
    closeIfUnder(path);
    await refreshFiles();
    say(`Deleted ~/${path}.`);
  } catch (error) {
    say(error.message, true);
  }
}

$("[data-delete]").addEventListener("click", () => currentFile() && remove(currentFile().path, "the file"));
$("[data-delete-folder]").addEventListener("click", () =>
  selected ? remove(selected, "the folder") : say("Select a folder in the tree first.", true),
);

// The home's dot-files that the overlay does not have: open one as it is, or
// adopt it (into the overlay, unchanged) in a click.
export async function refreshHome() {
  const { running, files } = await call("GET", "/home/");
  const list = $("[data-home-list]");
  list.replaceChildren();
  $("[data-home-files]").hidden = !running || files.length === 0;
  for (const file of files) {
    const item = document.createElement("li");
    const name = document.createElement("button");
    name.type = "button";
    name.className = "tree-file";
    name.textContent = file.path;
    name.title = `${file.size} bytes`;
    name.addEventListener("click", async () => showFromHome(await fromHome(file.path)));
    const adopt = document.createElement("button");
    adopt.type = "button";
    adopt.className = "link";
    adopt.dataset.adopt = file.path;
    adopt.textContent = "adopt";
    adopt.addEventListener("click", () => adoptFile(file.path));
    item.append(name, " ", adopt);
    list.append(item);
  }
}

async function adoptFile(path) {
  try {
    const file = await fromHome(path);
    if (!file) return say(`Your home no longer has ~/${path}.`, true);
    const body = file.content === undefined ? { content_base64: file.content_base64 } : { content: file.content };
    await saveFile(path, { ...body, executable: file.executable });
    await refreshFiles();
    await refreshHome();
    say(`~/${path} is in your dotfiles now, as your home has it.`);
  } catch (error) {
    say(error.message, true);
  }
}
