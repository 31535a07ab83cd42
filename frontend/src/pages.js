import { portsList } from "./previews.js";

// What every page shares: forms that destroy something ask first, naming
// what goes. A form with data-confirm asks that; one with data-confirm-with
// asks that instead while its [data-confirm-when] box is ticked.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    const ticked = form.querySelector("[data-confirm-when]")?.checked;
    const question = (ticked && form.dataset.confirmWith) || form.dataset.confirm;
    if (!window.confirm(question)) event.preventDefault();
  });
}

// The ports list, where a page has one (the landing and workspace pages).
const ports = document.querySelector("[data-ports]");
if (ports) portsList(ports);
