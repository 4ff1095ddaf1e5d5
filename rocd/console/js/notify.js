// Messages to the user: errors as the API words them, and the token prompt on a 401.

import { ApiError } from "./api.js";
import { h } from "./dom.js";

const $ = (id) => document.getElementById(id);

export function toast(message, kind = "info") {
  const box = $("toasts");
  const item = h(`div.toast.${kind}`, {},
    h("span.toast-text", { "data-testid": `toast-${kind}` }, message),
    h("button.ghost.icon", { type: "button", "aria-label": "dismiss", onclick: () => item.remove() }, "×"));
  box.append(item);
  while (box.children.length > 4) box.firstChild.remove();
  setTimeout(() => item.remove(), kind === "error" ? 12000 : 5000);
}

export function openToken(why) {
  $("token-panel").hidden = false;
  if (why) $("token-why").textContent = why;
  $("token-input").focus();
}

/** Show an error (an ApiError carries the API's own message); a 401 asks for a token. */
export function report(err) {
  if (err instanceof ApiError && err.status === 401) openToken(err.message);
  toast(err.message || String(err), "error");
}

/** Run an action of the user and show its error. Returns whether it worked. */
export async function attempt(action) {
  try {
    await action();
    return true;
  } catch (err) {
    report(err);
    return false;
  }
}
