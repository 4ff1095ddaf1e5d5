// The console: tabs, the token, error messages, and the event feed that keeps the views
// current. Each view lives in its own module and renders from the store.

import { getToken, setToken } from "./api.js";
import { debounce } from "./dom.js";
import { EventFeed } from "./events.js";
import { initDevices } from "./devices.js";
import { initMatrix } from "./matrix.js";
import { initPeers } from "./peers.js";
import { report } from "./notify.js";
import { initStreams } from "./streams.js";
import {
  changed, loadAllDevices, loadDevices, loadPeers, loadStreams, onChange, recordMetrics, state,
} from "./store.js";

const $ = (id) => document.getElementById(id);

function showView() {
  const name = (location.hash || "#streams").slice(1);
  const known = ["streams", "devices", "peers"].includes(name) ? name : "streams";
  for (const view of document.querySelectorAll(".view")) view.hidden = view.dataset.view !== known;
  for (const tab of document.querySelectorAll("#tabs a")) {
    tab.classList.toggle("active", tab.dataset.view === known);
  }
}

const reloadPeers = debounce(() => loadPeers().then(loadAllDevices).catch(report), 150);
const reloadStreams = debounce(() => loadStreams().catch(report), 150);
const peerReloads = new Map();
function reloadDevices(uid) {
  if (!peerReloads.has(uid)) peerReloads.set(uid, debounce(() => loadDevices(uid).catch(report), 150));
  peerReloads.get(uid)();
}

function onEvent(event) {
  const family = event.kind.split(".")[0];
  if (event.kind === "stream.metrics") recordMetrics(event);
  else if (family === "stream") reloadStreams();
  else if (family === "peer") reloadPeers();
  else if (family === "device" || family === "vad" || family === "driver") reloadDevices(event.peer);
}

async function reloadAll() {
  await loadPeers();
  await Promise.all([loadAllDevices(), loadStreams()]);
}

const feed = new EventFeed("peer.,device.,vad.,driver.,stream.", {
  onEvent,
  onOpen: () => reloadAll().catch(report), // nothing missed while it was closed
  onState: (live, reason) => {
    const el = $("live");
    el.dataset.state = live;
    el.textContent = `events: ${live}`;
    el.title = reason || "live events";
  },
});

/** Load everything, then follow the events; a 401 waits for a token instead (the event
 * WebSocket would only be refused too). */
async function start() {
  try {
    await reloadAll();
  } catch (err) {
    report(err);
    if (err.status === 401) return;
  }
  feed.start();
}

function initToken() {
  $("token-button").addEventListener("click", () => {
    const panel = $("token-panel");
    panel.hidden = !panel.hidden;
  });
  $("token-input").value = getToken();
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("token-input").value.trim());
    $("token-panel").hidden = true;
    start();
  });
  $("token-forget").addEventListener("click", () => {
    setToken("");
    $("token-input").value = "";
    start();
  });
}

onChange((what) => {
  if (what === "peers" && state.self) {
    $("self-name").textContent = state.self.name;
    document.title = `${state.self.name} · rocd console`;
  }
});

initToken();
initPeers();
initDevices();
initMatrix();
initStreams();
window.addEventListener("hashchange", showView);
showView();
// Round trips and "last seen" change without events: refresh the peers now and then.
setInterval(() => {
  if (!document.hidden && $("live").dataset.state === "live") loadPeers().catch(() => {});
}, 5000);
setInterval(() => changed("tick"), 1000);
start();
