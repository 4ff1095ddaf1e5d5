// The Devices view: every reachable instance's devices (volume, mute, name) and virtual
// devices (create, rename, delete).

import { api, seg } from "./api.js";
import { confirmButton, editableName, fill, h, setValue, sync, text } from "./dom.js";
import { attempt, report } from "./notify.js";
import { devicePeers, loadDevices, onChange, state } from "./store.js";

const VAD_DRIVERS = ["pulse", "tone", "file"];

async function saving(action) {
  try {
    await action();
  } catch (err) {
    report(err);
    throw err;
  }
}

function devicePath(peer, id) {
  return `/peers/${seg(peer)}/devices/${seg(id)}`;
}

function makeDeviceRow() {
  const row = h("tr");
  const name = editableName((value) => saving(async () => {
    await api("PUT", devicePath(row.device.peer, row.device.id), { name: value });
    await loadDevices(row.device.peer);
  }), "device-name");
  const volume = h("input.volume", {
    type: "range", min: 0, max: 150, step: 1, "aria-label": "volume", "data-testid": "volume",
  });
  const volumeText = h("span.volume-text");
  volume.addEventListener("input", () => {
    volume.classList.add("dragging");
    volumeText.textContent = `${volume.value} %`;
  });
  volume.addEventListener("change", () => attempt(async () => {
    try {
      await api("PUT", devicePath(row.device.peer, row.device.id), { volume: Number(volume.value) / 100 });
    } finally {
      volume.classList.remove("dragging");
    }
    await loadDevices(row.device.peer);
  }));
  const mute = h("input.mute", { type: "checkbox", "aria-label": "mute", "data-testid": "mute" });
  mute.addEventListener("change", () => attempt(async () => {
    await api("PUT", devicePath(row.device.peer, row.device.id), { mute: mute.checked });
    await loadDevices(row.device.peer);
  }));
  row.append(
    h("td.dir"), h("td", {}, name, h("div.mono.sub")), h("td.state"),
    h("td", {}, h("div.volume-box", {}, volume, volumeText)),
    h("td", {}, h("label.switch", {}, mute, h("span", {}, "mute"))),
    h("td.format"),
  );
  row.parts = { name, volume, volumeText, mute };
  return row;
}

function updateDeviceRow(row, device) {
  row.device = device;
  row.dataset.id = device.id;
  const cells = row.children;
  text(cells[0], device.direction === "source" ? "◉ source" : "▶ sink");
  cells[0].className = `dir ${device.direction}`;
  row.parts.name.setName(device.name);
  text(cells[1].querySelector(".sub"), device.vad ? `${device.id} · virtual` : device.id);
  text(cells[2], device.enabled ? device.state : "disabled");
  const percent = Math.round(device.volume * 100);
  setValue(row.parts.volume, percent);
  if (!row.parts.volume.matches(".dragging")) text(row.parts.volumeText, `${percent} %`);
  if (document.activeElement !== row.parts.mute) row.parts.mute.checked = device.mute;
  text(cells[5], `${device.rate} Hz · ${device.channels} ch`);
}

function makeVadRow() {
  const row = h("tr");
  const name = editableName((value) => saving(async () => {
    await api("PUT", `/peers/${seg(row.vad.peer)}/vads/${seg(row.vad.uid)}`, { name: value });
    await loadDevices(row.vad.peer);
  }), "vad-name");
  const remove = confirmButton("Delete", "Delete it?", () => attempt(async () => {
    await api("DELETE", `/peers/${seg(row.vad.peer)}/vads/${seg(row.vad.uid)}`);
    await loadDevices(row.vad.peer);
  }), { "data-testid": "delete-vad" });
  row.append(h("td.kind"), h("td", {}, name), h("td.driver"), h("td.format"), h("td.state"),
    h("td.mono.device"), h("td.actions", {}, remove));
  row.parts = { name };
  return row;
}

function updateVadRow(row, vad) {
  row.vad = vad;
  row.dataset.uid = vad.uid;
  const cells = row.children;
  text(cells[0], vad.kind === "speaker" ? "virtual speaker" : "virtual microphone");
  row.parts.name.setName(vad.name);
  text(cells[2], vad.driver);
  text(cells[3], `${vad.rate} Hz · ${vad.channels} ch`);
  text(cells[4], vad.reason ? `${vad.state}: ${vad.reason}` : vad.state);
  cells[4].dataset.state = vad.state;
  text(cells[5], vad.device || "–");
}

function makeCreateForm(card) {
  const name = h("input", { name: "name", placeholder: "name", maxlength: 64, "aria-label": "VAD name" });
  const kind = h("select", { name: "kind", "aria-label": "kind" },
    h("option", { value: "speaker" }, "virtual speaker"),
    h("option", { value: "microphone" }, "virtual microphone"));
  const driver = h("select", { name: "driver", "aria-label": "driver" });
  const form = h("form.create-vad", { "data-testid": "create-vad" }, name, kind, driver,
    h("button", { type: "submit" }, "Create"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const peer = card.dataset.key;
    attempt(async () => {
      await api("POST", `/peers/${seg(peer)}/vads`, { name: name.value, kind: kind.value, driver: driver.value });
      name.value = "";
      await loadDevices(peer);
    });
  });
  return { form, driver };
}

function makeCard() {
  const card = h("section.card.peer-card");
  const create = makeCreateForm(card);
  card.append(
    h("header.card-head", {}, h("h2"), h("span.peer-state"), h("span.drivers")),
    h("p.error"),
    h("table.grid.devices", {},
      h("thead", {}, h("tr", {}, ["", "device", "state", "volume", "", "format"].map((t) => h("th", {}, t)))),
      h("tbody")),
    h("h3", {}, "Virtual devices"),
    h("table.grid.vads", {}, h("tbody")),
    create.form,
  );
  card.parts = { create };
  return card;
}

function updateCard(card, peer) {
  card.dataset.state = peer.self ? "self" : peer.state;
  card.dataset.uid = peer.uid;
  const [head, error, devices, , vads] = card.children;
  text(head.children[0], peer.self ? `${peer.name} (this instance)` : peer.name);
  const list = state.devices.get(peer.uid);
  const stale = list && list.stale ? `offline: as seen ${Math.round(list.age_s)} s ago` : "";
  text(head.children[1], stale || (peer.self ? "" : peer.state));
  const drivers = list ? list.drivers : [];
  fill(head.children[2], drivers.map((d) => h(`span.chip.${d.up ? "up" : "down"}`, { title: d.reason || "" }, d.driver)));
  const problem = state.peerErrors.get(peer.uid) || "";
  text(error, problem);
  error.hidden = !problem;
  // A virtual speaker's monitor is what apps play into it: the matrix shows it as a source.
  const shown = list ? list.devices.filter((d) => !(d.vad && d.monitor_of)) : [];
  sync(devices.tBodies[0], shown, (d) => d.id, makeDeviceRow, updateDeviceRow);
  sync(vads.tBodies[0], state.vads.get(peer.uid) || [], (v) => v.uid, makeVadRow, updateVadRow);
  const select = card.parts.create.driver;
  const up = drivers.filter((d) => d.up && VAD_DRIVERS.includes(d.driver)).map((d) => d.driver);
  if (select.dataset.options !== up.join(",")) {
    select.dataset.options = up.join(",");
    fill(select, up.map((d) => h("option", { value: d }, d)));
  }
}

function render() {
  sync(document.getElementById("device-peers"), devicePeers(), (p) => p.uid, makeCard, updateCard);
}

export function initDevices() {
  onChange((what) => {
    if (what === "peers" || what === "devices") render();
  });
}
