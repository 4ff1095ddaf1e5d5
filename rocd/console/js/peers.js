// The Peers view: every instance the cluster knows, pairing (a discovered instance, an
// invite, an address and key), roles and revocation.

import { api, seg } from "./api.js";
import { confirmButton, editableName, fmtAgo, fmtMs, h, sync, text } from "./dom.js";
import { attempt, report, toast } from "./notify.js";
import { loadPeers, onChange, state } from "./store.js";

const ROLES = ["viewer", "operator", "admin"];

/** How a peer is named in paths: its uid, or its key fingerprint until it is reached. */
const pathId = (p) => (p.self ? "self" : p.uid || p.fingerprint);
const rowKey = (p) => (p.self ? "self" : p.uid || p.fingerprint || p.key);

function makeRow(peer) {
  const name = editableName(async (value) => {
    try {
      await api("PUT", `/peers/${seg(pathId(row.peer))}`, { name: value });
    } catch (err) {
      report(err);
      throw err;
    }
    await loadPeers();
  }, "peer-name");
  const role = h("select.role", {
    "aria-label": "role",
    onchange: () => attempt(async () => {
      await api("PUT", `/peers/${seg(pathId(row.peer))}/role`, { role: role.value });
      await loadPeers();
    }),
  }, ROLES.map((r) => h("option", { value: r }, r)));
  const actions = h("td.actions");
  const row = h("tr", {}, h("td", {}, h("span.dot")), h("td", {}, name), h("td.mono.uid"),
    h("td.state"), h("td.role-cell", {}, role), h("td.rtt"), h("td.route"), h("td.mono.address"),
    h("td.mono.fingerprint"), h("td.seen"), actions);
  row.parts = { name, role, actions };
  return row;
}

function pairButton(peer) {
  const body = peer.state === "discovered" ? { uid: peer.uid } : { address: peer.address, key: peer.key };
  const label = peer.state === "discovered" ? "Pair" : "Trust";
  return h("button", {
    type: "button",
    "data-testid": "pair",
    onclick: () => attempt(async () => {
      const made = await api("POST", "/peers", body);
      toast(`${made.name || peer.name || made.fingerprint} is trusted; it is online once it trusts this instance too`);
      await loadPeers();
    }),
  }, label);
}

function updateRow(row, peer) {
  row.peer = peer;
  row.dataset.state = peer.self ? "self" : peer.state;
  row.dataset.uid = peer.uid;
  const cells = row.children;
  cells[0].firstChild.className = `dot state-${peer.self ? "online" : peer.state}`;
  row.parts.name.setName(peer.name || "(not reached yet)");
  row.parts.name.querySelector("button").hidden = !(peer.self || (peer.uid && peer.state === "online"));
  text(cells[2], peer.uid || "–");
  text(cells[3], peer.self ? "this instance" : peer.via ? `${peer.state} via ${peer.via}` : peer.state);
  cells[3].title = peer.reason || "";
  const trusted = !peer.self && !peer.via && peer.role;
  row.parts.role.hidden = !trusted;
  if (trusted && document.activeElement !== row.parts.role) row.parts.role.value = peer.role;
  text(cells[5], peer.rtt_ms === null || peer.rtt_ms === undefined ? "–" : fmtMs(peer.rtt_ms));
  text(cells[6], peer.route === "relay" ? `relay (${peer.relay})` : peer.route || "–");
  text(cells[7], peer.self ? peer.address || "–" : peer.address || peer.observed || "–");
  text(cells[8], peer.fingerprint || "–");
  text(cells[9], peer.self ? "–" : fmtAgo(peer.last_seen));
  const kind = peer.state === "discovered" || peer.state === "refused" ? peer.state : trusted ? "trusted" : "";
  if (row.dataset.actions !== kind) {
    row.dataset.actions = kind;
    const actions = row.parts.actions;
    actions.replaceChildren();
    if (kind === "discovered" || kind === "refused") actions.append(pairButton(peer));
    if (kind === "trusted") {
      actions.append(confirmButton("Remove", "Remove trust?", () => attempt(async () => {
        await api("DELETE", `/peers/${seg(pathId(row.peer))}`);
        await loadPeers();
      }), { "data-testid": "remove-peer" }));
    }
  }
}

function render() {
  sync(document.getElementById("peer-rows"), state.peers, rowKey, makeRow, updateRow);
}

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

export function initPeers() {
  onChange((what) => {
    if (what === "peers" || what === "tick") render();
  });
  const invite = document.getElementById("invite-form");
  invite.addEventListener("submit", (ev) => {
    ev.preventDefault();
    attempt(async () => {
      const made = await api("POST", "/cluster/invites", { role: formData(invite).role });
      const out = document.getElementById("invite-token");
      out.value = made.token;
      out.hidden = false;
    });
  });
  const join = document.getElementById("join-form");
  join.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = formData(join).token.trim();
    attempt(async () => {
      const inviter = await api("POST", "/cluster/join", { token });
      toast(`joined ${inviter.name}`);
      join.reset();
      await loadPeers();
    });
  });
  const pair = document.getElementById("pair-form");
  pair.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const { address, key, role } = formData(pair);
    attempt(async () => {
      const made = await api("POST", "/peers", { address: address.trim(), key: key.trim(), role });
      toast(`${made.fingerprint} is trusted; it is online once it trusts this instance too`);
      pair.reset();
      await loadPeers();
    });
  });
}
