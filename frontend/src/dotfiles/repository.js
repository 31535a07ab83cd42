// The dotfiles repository form: URL, ref, setup script and its arguments,
// with each refusal shown next to its field.
import { words, line } from "../words.js";
import { $, call, say } from "./page.js";

const form = $("[data-config]");

export async function loadConfig() {
  const config = await call("GET", "/config");
  for (const field of ["repo_url", "ref", "setup_path"]) form.elements[field].value = config[field];
  form.elements.setup_args.value = line(config.setup_args);
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
      setup_args: words(form.elements.setup_args.value),
      enabled: form.elements.enabled.checked,
    });
    say("Repository settings saved; they run at the next apply.");
  } catch (error) {
    const slot = error.field && form.querySelector(`[data-error-for=${error.field}]`);
    if (slot) slot.textContent = error.message;
    say(error.message, true);
  }
});
