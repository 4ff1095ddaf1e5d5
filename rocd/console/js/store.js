// What the console knows of the cluster, loaded through the API and kept current by its
// events. Views subscribe with onChange(fn) and are told what changed.

import { api, seg } from "./api.js";

export const state = {
  self: null, // this instance's PeerInfo
  peers: [], // GET /peers (self first)
  devices: new Map(), // peer uid -> DeviceList
  vads: new Map(), // peer uid -> [Vad]
  peerErrors: new Map(), // peer uid -> why its devices could not be read
  streams: [], // GET /streams
  metrics: new Map(), // stream uid -> {receiver: EndMetrics, sender: EndMetrics}
  history: new Map(), // stream uid -> [{t, latency, target, loss, recovered}]
  selected: null, // stream uid shown in the chart
};

/** Seconds of history the chart shows. */
export const HISTORY_S = 300;

const listeners = new Set();
export function onChange(fn) {
  listeners.add(fn);
}
export function changed(what, detail) {
  for (const fn of listeners) fn(what, detail);
}

/** Instances whose devices can be read here: this one, trusted peers and those known
 * through a peer (never a discovered or refused key, nor a peer not reached yet). */
export function devicePeers() {
  return state.peers.filter(
    (p) => p.uid && (p.self || ((p.state === "online" || p.state === "offline") && (p.role || p.via))),
  );
}

export function peerName(uid) {
  const peer = state.peers.find((p) => p.uid === uid);
  return peer ? peer.name : uid;
}

export async function loadPeers() {
  const peers = await api("GET", "/peers");
  state.peers = peers;
  state.self = peers.find((p) => p.self) || null;
  for (const uid of [...state.devices.keys()]) {
    if (!devicePeers().some((p) => p.uid === uid)) {
      state.devices.delete(uid);
      state.vads.delete(uid);
    }
  }
  changed("peers");
}

export async function loadDevices(uid) {
  try {
    const [devices, vads] = await Promise.all([
      api("GET", `/peers/${seg(uid)}/devices`),
      api("GET", `/peers/${seg(uid)}/vads`),
    ]);
    state.devices.set(uid, devices);
    state.vads.set(uid, vads);
    state.peerErrors.delete(uid);
  } catch (err) {
    state.peerErrors.set(uid, err.message);
    if (err.status === 401) throw err;
  } finally {
    changed("devices", uid);
  }
}

export async function loadAllDevices() {
  await Promise.all(devicePeers().map((p) => loadDevices(p.uid)));
}

export async function loadStreams() {
  state.streams = await api("GET", "/streams");
  const alive = new Set(state.streams.map((s) => s.uid));
  for (const uid of [...state.metrics.keys()]) {
    if (!alive.has(uid)) {
      state.metrics.delete(uid);
      state.history.delete(uid);
    }
  }
  if (state.selected && !alive.has(state.selected)) state.selected = null;
  if (!state.selected && state.streams.length) state.selected = state.streams[0].uid;
  changed("streams");
}

/** A stream.metrics event: the ends one instance holds, once a second. */
export function recordMetrics(event) {
  const uid = event.data.stream;
  const merged = state.metrics.get(uid) || {};
  let receiver = null;
  for (const end of event.data.ends || []) {
    merged[end.role] = end;
    if (end.role === "receiver" && end.receiver) receiver = end;
  }
  state.metrics.set(uid, merged);
  if (receiver) addPoint(uid, receiver);
  changed("metrics", uid);
}

function addPoint(uid, end) {
  const r = end.receiver;
  const points = state.history.get(uid) || [];
  const last = points[points.length - 1];
  let loss = 0;
  let recovered = 0;
  if (last) {
    const lost = Math.max(0, r.packetsLost - last.lost);
    const got = Math.max(0, r.packetsReceived - last.received);
    loss = lost + got > 0 ? lost / (lost + got) : 0;
    recovered = Math.max(0, r.recovered_packets - last.recoveredTotal);
  }
  points.push({
    t: end.time,
    latency: r.latency_ms,
    target: r.target_latency_ms,
    loss,
    recovered,
    lost: r.packetsLost,
    received: r.packetsReceived,
    recoveredTotal: r.recovered_packets,
  });
  while (points.length && points[0].t < end.time - HISTORY_S) points.shift();
  state.history.set(uid, points);
}
