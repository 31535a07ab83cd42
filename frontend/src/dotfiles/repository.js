// The dotfiles repository form: URL, how a private one is reached (a token,
// or a deploy key made here or pasted), ref, setup script and its arguments,
// with each refusal shown next to its field. The token and the private key
// only ever travel to Spoon: answers carry whether a token is saved, and the
// key's public half.
import { words, line } from "../words.js";
import { $, call, say } from "./page.js";

const form = $("[data-config]");
let saved = {};

// The form stays inert until the saved settings are in it: what someone
// typed before would be overwritten by them.
export async function loadConfig() {
  show(await call("GET", "/config"));
  form.inert = false;
}

function show(config) {
  for (const field of ["repo_url", "ref", "setup_path", "token_username"]) {
    form.elements[field].value = config[field];
  }
  form.elements.setup_args.value = line(config.setup_args);
  form.elements.enabled.checked = config.enabled;
  chooseAccess(config.access);
  showCredentials(config);
}

// What is saved of the token and the key; the rest of the form as it is.
function showCredentials(config) {
  saved = config;
  form.elements.token.value = "";
  form.elements.token.placeholder = config.has_token ? "saved (paste a new one to replace it)" : "";
  $("[data-token-saved]").hidden = !config.has_token;
  const key = config.deploy_key;
  $("[data-key-shown]").hidden = !key;
  $("[data-copy-key]").hidden = !key;
  $("[data-remove-key]").hidden = !key;
  $("[data-public-key]").value = key ? key.public_key : "";
  $("[data-fingerprint]").textContent = key ? key.fingerprint : "";
  $("[data-generate-key]").textContent = key ? "Generate a new key" : "Generate a deploy key";
  showAccess();
}

// Forgetting a credential makes the repository public again, if it used it.
async function forget(path) {
  await call("DELETE", path);
  const config = await call("GET", "/config");
  chooseAccess(config.access);
  showCredentials(config);
}

// Not through the radios' value: setting it to "" (public) checks nothing.
function chooseAccess(access) {
  for (const radio of form.elements.access) radio.checked = radio.value === access;
}

// The part of the chosen access, before it is saved too.
function showAccess() {
  const access = form.elements.access.value;
  for (const part of form.querySelectorAll("[data-access-part]")) {
    part.hidden = part.dataset.accessPart !== access;
  }
  $("[data-access-note]").hidden = !access;
}

function clearErrors() {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
}

function refused(error) {
  const slot = error.field && form.querySelector(`[data-error-for=${error.field}]`);
  if (slot) slot.textContent = error.message;
  say(error.message, true);
}

// Runs a change with errors shown at their fields; true when it went through.
async function attempt(change) {
  clearErrors();
  try {
    await change();
    return true;
  } catch (error) {
    refused(error);
    return false;
  }
}

for (const radio of form.elements.access) radio.addEventListener("change", showAccess);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = {
    repo_url: form.elements.repo_url.value,
    ref: form.elements.ref.value,
    setup_path: form.elements.setup_path.value,
    setup_args: words(form.elements.setup_args.value),
    enabled: form.elements.enabled.checked,
    access: form.elements.access.value,
    token_username: form.elements.token_username.value,
  };
  if (form.elements.token.value) data.token = form.elements.token.value;
  if (await attempt(async () => show(await call("PUT", "/config", data)))) {
    say("Repository settings saved; they run at the next apply.");
  }
});

$("[data-forget-token]").addEventListener("click", async () => {
  if (!window.confirm("Forget the saved token? Spoon then clones the repository as a public one.")) {
    return;
  }
  if (await attempt(() => forget("/token"))) say("The token is forgotten.");
});

async function setKey(body, done) {
  if (await attempt(async () => showCredentials(await call("POST", "/deploy-key", body)))) {
    const choose = form.elements.access.value === "deploy_key" ? "" :
      ' Choose "Private, with a deploy key" and save the repository settings.';
    say(`${done} Add its public half to the repository's deploy keys.${choose}`);
  }
}

$("[data-generate-key]").addEventListener("click", () => {
  const replacing = saved.deploy_key &&
    "Make a new deploy key? The repository stops taking the old one once you swap them there.";
  if (replacing && !window.confirm(replacing)) return;
  setKey(undefined, "A new deploy key is made.");
});

$("[data-paste-key]").addEventListener("click", async () => {
  await setKey({ private_key: form.elements.private_key.value }, "Spoon took your key.");
  if (!form.querySelector("[data-error-for=private_key]").textContent) {
    form.elements.private_key.value = "";
    form.querySelector(".paste-key").open = false;
  }
});

$("[data-remove-key]").addEventListener("click", async () => {
  const question = "Remove the deploy key? Spoon forgets it, and cannot clone a private repository " +
    "over ssh until you give it another.";
  if (!window.confirm(question)) return;
  if (await attempt(() => forget("/deploy-key"))) {
    say("The deploy key is removed: delete it from the repository's deploy keys too.");
  }
});

$("[data-copy-key]").addEventListener("click", async () => {
  const text = $("[data-public-key]").value;
  try {
    await navigator.clipboard.writeText(text);
  } catch (error) {
    // Pages served over plain http (not localhost) have no clipboard API.
    $("[data-public-key]").select();
    document.execCommand("copy");
  }
  say("The public key is copied.");
});
