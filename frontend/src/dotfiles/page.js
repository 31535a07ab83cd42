// What every part of the Settings -> Dotfiles page shares: its root, a
// lookup inside it, the message line, and the page's JSON API.
import { call as request } from "../api.js";

const API = "/api/dotfiles";
export const root = document.querySelector("[data-dotfiles]");
export const $ = (selector) => root.querySelector(selector);

export const call = (method, path, data) => request(method, API + path, data);

export const encodePath = (path) => path.split("/").map(encodeURIComponent).join("/");

// Save a file of the overlay. The path travels in the body: in a URL the
// browser would resolve "../x" before the server could refuse it.
export const saveFile = (path, body) => call("POST", "/files/", { path, ...body });

// Follow a run until it ends; the finished run.
export async function finished(id) {
  for (;;) {
    const run = await call("GET", `/runs/${id}`);
    if (run.status !== "running") return run;
    await new Promise((ok) => setTimeout(ok, 400));
  }
}

// The last thing a run's log says, for a one-line account of a failure.
export const lastLine = (run) => (run.log || "").trim().split("\n").pop() || `exit ${run.exit_code}`;

export function say(text, isError = false) {
  const line = $("[data-message]");
  line.textContent = text;
  line.classList.toggle("error", isError);
}
