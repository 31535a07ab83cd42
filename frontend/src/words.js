// Words as a shell would split them, with quotes; no expansion, no pipes.
// Commands and setup arguments travel as these words, never as a shell line.
export function words(line) {
  const out = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let match;
  while ((match = pattern.exec(line))) {
    out.push(match[1] !== undefined ? match[1].replace(/\\(.)/g, "$1") : match[2] ?? match[3]);
  }
  return out;
}

// The line words() reads back as the same words.
export function line(list) {
  return list
    .map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/["\\]/g, "\\$&")}"`))
    .join(" ");
}
