// What every part of the Settings -> Dotfiles page shares: its root, a
// lookup inside it, the message line, and the page's JSON API.
import { call as request } from "../api.js";

const API = "/api/dotfiles";
export const root = document.querySelector("[data-dotfiles]");
export const $ = (selector) => root.querySelector(selector);

export const call = (method, path, data) => request(method, API + path, data);

export const encodePath = (path) => path.split("/").map(encodeURIComponent).join("/");

export function say(text, isError = false) {
  const line = $("[data-message]");
  line.textContent = text;
  line.classList.toggle("error", isError);
}
