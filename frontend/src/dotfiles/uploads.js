// Uploads into the selected folder: files, whole folders, and drag and drop,
// keeping their relative paths; files over the size limit are refused here.
import { refreshFiles, selectedFolder } from "./files.js";
import { $, root, saveFile, say } from "./page.js";

const maxBytes = Number(root.dataset.maxBytes);

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
  const folder = selectedFolder();
  for (const { file, path } of entries) {
    const target = (folder ? `${folder}/` : "") + path;
    if (file.size > maxBytes) {
      refused.push(`${target} (${file.size} bytes, over ${maxBytes})`);
      continue;
    }
    try {
      const buffer = await file.arrayBuffer();
      await saveFile(target, { content_base64: toBase64(buffer), executable: false });
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
