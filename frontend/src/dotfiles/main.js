// Settings -> Dotfiles: the overlay's file tree (files.js), the editor
// (editor.js), uploads (uploads.js), the repository form (repository.js), and
// "Apply now" with its log and the last runs (applies.js), all through the
// JSON API under /api/dotfiles/ (page.js). This file wires them together.
import { refreshRuns } from "./applies.js";
import { editor, onSaved, open, save } from "./editor.js";
import { refreshFiles, refreshHome } from "./files.js";
import { loadConfig } from "./repository.js";
import "./uploads.js";

onSaved((path, applying) => {
  refreshFiles();
  refreshHome();
  if (applying) setTimeout(refreshRuns, 1500);
});

refreshFiles();
refreshHome();
loadConfig();
refreshRuns();
window.spoonDotfiles = { editor, open, save };
