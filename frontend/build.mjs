// Bundles the browser code into ../static/build, where Django's static files
// (and so whitenoise) find it. Both README commands run this through
// scripts/setup; the output is never committed.
import * as esbuild from "esbuild";

await esbuild.build({
  entryPoints: {
    terminal: "src/terminal.js",
    "terminal-style": "src/terminal.css",
    dotfiles: "src/dotfiles/main.js",
    runs: "src/runs.js",
    pages: "src/pages.js",
  },
  outdir: "../static/build",
  bundle: true,
  minify: true,
  sourcemap: true,
  target: ["es2020"],
  loader: { ".woff2": "file", ".woff": "file" },
  assetNames: "fonts/[name]-[hash]",
  logLevel: "warning",
});
