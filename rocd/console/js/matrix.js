// The routing matrix: sources down, destinations across, grouped by instance. A click on
// an empty cell makes a stream; a stream's cell shows its state as a colour, and two
// clicks on it delete it.

import { api, seg } from "./api.js";
import { h, fill } from "./dom.js";
import { attempt } from "./notify.js";
import { changed, devicePeers, loadStreams, onChange, state } from "./store.js";

export const STATES = ["pending", "starting", "active", "degraded", "failed", "stopped"];

const keyOf = (peer, id) => `${peer}|${id}`;

/** The rows and columns: every source and destination of every reachable instance. */
export function ends() {
  const sources = [];
  const destinations = [];
  for (const peer of devicePeers()) {
    const list = state.devices.get(peer.uid);
    if (!list) continue;
    const byId = new Map(list.devices.map((d) => [d.id, d]));
    for (const d of list.devices) {
      const end = { peer: peer.uid, device: d.id };
      if (d.direction === "source") {
        const sink = d.monitor_of ? byId.get(d.monitor_of) : null;
        const label = sink && sink.vad ? `${sink.name} (played into it)` : d.name;
        sources.push({ peer, key: keyOf(peer.uid, d.id), label, id: d.id, end, monitorOf: d.monitor_of });
      } else {
        destinations.push({ peer, key: keyOf(peer.uid, d.id), label: d.name, id: d.id, end });
      }
    }
    for (const v of state.vads.get(peer.uid) || []) {
      if (v.kind !== "microphone" || !v.device) continue;
      destinations.push({
        peer, key: keyOf(peer.uid, `vad:${v.uid}`), label: `${v.name} (microphone)`,
        id: `vad ${v.uid}`, end: { peer: peer.uid, vad: v.uid },
      });
    }
  }
  return { sources, destinations };
}

/** The cell of a stream's end ("peer|device"), or null (an external end). */
function cellKey(end, side) {
  if (end.external || !end.peer) return null;
  if (end.device) return keyOf(end.peer, end.device);
  const vad = (state.vads.get(end.peer) || []).find((v) => v.uid === end.vad);
  if (!vad || !vad.device) return null;
  if (side === "destination") {
    return vad.kind === "microphone" ? keyOf(end.peer, `vad:${vad.uid}`) : keyOf(end.peer, vad.device);
  }
  if (vad.kind === "microphone") return keyOf(end.peer, vad.device);
  const list = state.devices.get(end.peer);
  const monitor = list && list.devices.find((d) => d.monitor_of === vad.device);
  return monitor ? keyOf(end.peer, monitor.id) : null;
}

export function streamCells() {
  const cells = new Map();
  for (const s of state.streams) {
    const src = cellKey(s.source, "source");
    const dst = cellKey(s.destination, "destination");
    if (!src || !dst) continue;
    const key = `${src}>${dst}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(s);
  }
  return cells;
}

/** A readable name of a stream's end. */
export function endLabel(end, side) {
  if (end.external) return `external ${end.external.source}`;
  const key = cellKey(end, side);
  const { sources, destinations } = ends();
  const found = (side === "source" ? sources : destinations).find((e) => e.key === key);
  const peer = state.peers.find((p) => p.uid === end.peer);
  const where = peer ? peer.name : end.peer;
  return `${found ? found.label : end.device || `VAD ${end.vad}`} @ ${where}`;
}

function settingsForNew() {
  const profile = document.getElementById("new-profile").value;
  return profile ? { latency: { profile } } : {};
}

let armed = null; // {key, timer}: a stream's cell clicked once

async function clickCell(cell, src, dst, streams) {
  if (cell.classList.contains("busy")) return;
  const key = cell.dataset.cell;
  if (streams.length) {
    state.selected = streams[0].uid;
    changed("selected");
    if (!armed || armed.key !== key) {
      if (armed) clearTimeout(armed.timer);
      armed = { key, timer: setTimeout(() => { armed = null; render(); }, 3000) };
      render();
      return;
    }
    clearTimeout(armed.timer);
    armed = null;
    cell.classList.add("busy");
    await attempt(async () => {
      for (const s of streams) await api("DELETE", `/streams/${seg(s.uid)}`);
    });
  } else {
    cell.classList.add("busy");
    await attempt(async () => {
      const made = await api("POST", "/streams", { source: src.end, destination: dst.end, settings: settingsForNew() });
      state.selected = made.uid;
    });
  }
  await attempt(loadStreams);
  render();
}

function cellTitle(src, dst, streams) {
  const base = `${src.label} @ ${src.peer.name} → ${dst.label} @ ${dst.peer.name}`;
  if (!streams.length) return `${base}\nclick: make a stream`;
  const s = streams[0];
  return `${base}\n${s.state}${s.reason ? `: ${s.reason}` : ""}\nclick twice: delete`;
}

function groups(list) {
  const out = [];
  for (const item of list) {
    const last = out[out.length - 1];
    if (last && last.peer.uid === item.peer.uid) last.items.push(item);
    else out.push({ peer: item.peer, items: [item] });
  }
  return out;
}

export function render() {
  const box = document.getElementById("matrix");
  const { sources, destinations } = ends();
  if (!sources.length || !destinations.length) {
    fill(box, h("p.empty", {}, "No devices yet."));
    return;
  }
  const cells = streamCells();
  const dstGroups = groups(destinations);
  const head1 = h("tr", {}, h("th.corner", { colspan: 2, rowspan: 2 }, h("span.corner-src", {}, "sources ↓"), h("span.corner-dst", {}, "destinations →")),
    dstGroups.map((g) => h("th.peer-group", { colspan: g.items.length }, g.peer.name)));
  const head2 = h("tr", {}, dstGroups.map((g, gi) => g.items.map((d, i) => h("th.dst", {
    title: `${d.label}\n${d.id} @ ${d.peer.name}`, "data-key": d.key, class: i === 0 && gi > 0 ? "group-start" : "",
  }, h("span", {}, d.label)))));
  const body = [];
  for (const g of groups(sources)) {
    g.items.forEach((src, i) => {
      const row = h("tr", { class: i === 0 ? "group-start" : "" });
      if (i === 0) row.append(h("th.peer-group.rows", { rowspan: g.items.length }, h("span", {}, g.peer.name)));
      row.append(h("th.src", { title: `${src.label}\n${src.id} @ ${src.peer.name}`, "data-key": src.key }, src.label));
      dstGroups.forEach((dg, gi) => dg.items.forEach((dst, j) => {
        const key = `${src.key}>${dst.key}`;
        const streams = cells.get(key) || [];
        const loop = src.peer.uid === dst.peer.uid && src.monitorOf === dst.id;
        const classes = ["cell"];
        if (j === 0 && gi > 0) classes.push("group-start");
        if (streams.length) classes.push(`state-${streams[0].state}`);
        if (streams.some((s) => s.uid === state.selected)) classes.push("selected");
        if (armed && armed.key === key) classes.push("armed");
        if (loop) classes.push("loop");
        const cell = h("td", {
          class: classes.join(" "),
          title: loop ? "a device's own monitor: no stream" : cellTitle(src, dst, streams),
          "data-cell": key, "data-source": src.key, "data-destination": dst.key,
          "data-state": streams.length ? streams[0].state : "",
          role: "button", tabindex: loop ? -1 : 0,
        }, streams.length > 1 ? String(streams.length) : armed && armed.key === key ? "×" : "");
        if (!loop) {
          const go = () => clickCell(cell, src, dst, streams);
          cell.addEventListener("click", go);
          cell.addEventListener("keydown", (ev) => {
            if (ev.key === "Enter" || ev.key === " ") {
              ev.preventDefault();
              go();
            }
          });
        }
        row.append(cell);
      }));
      body.push(row);
    });
  }
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.cell : null;
  fill(box, h("table.matrix", {}, h("thead", {}, head1, head2), h("tbody", {}, body)));
  if (focused) {
    const again = box.querySelector(`[data-cell="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function renderLegend() {
  fill(document.getElementById("legend"), STATES.map((s) => h("span.legend-item", {}, h(`span.swatch.state-${s}`), s)));
}

export function initMatrix() {
  renderLegend();
  onChange((what) => {
    if (what === "peers" || what === "devices" || what === "streams" || what === "selected") render();
  });
}
