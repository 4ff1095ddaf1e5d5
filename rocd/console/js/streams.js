// The streams' metrics, live from the event feed: latency against target, loss, packets
// recovered by FEC, clock drift, bitrate; and the chart of the selected stream.

import { api, seg } from "./api.js";
import { drawChart } from "./chart.js";
import { confirmButton, fmtBitrate, fmtMs, fmtPct, h, sync, text } from "./dom.js";
import { endLabel } from "./matrix.js";
import { attempt } from "./notify.js";
import { changed, loadStreams, onChange, state } from "./store.js";

function makeRow() {
  const row = h("tr.stream-row", { tabindex: 0 });
  const remove = confirmButton("Delete", "Delete it?", () => attempt(async () => {
    await api("DELETE", `/streams/${seg(row.stream.uid)}`);
    await loadStreams();
  }), { "data-testid": "delete-stream" });
  row.append(h("td", {}, h("span.dot")), h("td.route"), h("td.state"), h("td.latency", { "data-testid": "latency" }),
    h("td.loss", { "data-testid": "loss" }), h("td.recovered", { "data-testid": "recovered" }),
    h("td.drift", { "data-testid": "drift" }), h("td.bitrate", { "data-testid": "bitrate" }), h("td.actions", {}, remove));
  const select = (ev) => {
    if (ev.target.closest("button")) return;
    state.selected = row.stream.uid;
    changed("selected");
  };
  row.addEventListener("click", select);
  row.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") select(ev);
  });
  return row;
}

/** The receiving end's figures (where latency, loss and drift are measured). */
function figures(uid) {
  const m = state.metrics.get(uid);
  const receiver = m && m.receiver && m.receiver.receiver;
  const sender = m && m.sender && m.sender.sender;
  return { receiver, sender };
}

function updateRow(row, stream) {
  row.stream = stream;
  row.dataset.uid = stream.uid;
  row.dataset.state = stream.state;
  row.classList.toggle("selected", stream.uid === state.selected);
  const cells = row.children;
  cells[0].firstChild.className = `dot state-${stream.state}`;
  text(cells[1], `${endLabel(stream.source, "source")} → ${endLabel(stream.destination, "destination")}`);
  text(cells[2], stream.reason ? `${stream.state}: ${stream.reason}` : stream.state);
  const { receiver, sender } = figures(stream.uid);
  if (receiver) {
    text(cells[3], `${fmtMs(receiver.latency_ms)} / ${fmtMs(receiver.target_latency_ms)}`);
    const total = receiver.packetsReceived + receiver.packetsLost;
    text(cells[4], `${fmtPct(total ? receiver.packetsLost / total : 0)} (${receiver.packetsLost})`);
    cells[4].title = `${receiver.packetsReceived} packets received, ${receiver.packetsLost} lost, ${receiver.late_packets} late`;
    text(cells[5], receiver.recovered_packets);
    text(cells[6], `${receiver.drift_ppm.toFixed(1)} ppm`);
    text(cells[7], fmtBitrate(receiver.bitrate_bps || (sender && sender.bitrate_bps)));
    row.dataset.received = receiver.packetsReceived;
  } else {
    for (const i of [3, 4, 5, 6]) text(cells[i], "–");
    text(cells[7], fmtBitrate(sender && sender.bitrate_bps));
  }
}

function renderRows() {
  sync(document.getElementById("stream-rows"), state.streams, (s) => s.uid, makeRow, updateRow);
}

function renderChart() {
  const canvas = document.getElementById("chart");
  const stream = state.streams.find((s) => s.uid === state.selected);
  const title = document.getElementById("chart-title");
  if (!stream) {
    text(title, state.streams.length ? "Select a stream" : "No streams");
    drawChart(canvas, []);
    return;
  }
  text(title, `${endLabel(stream.source, "source")} → ${endLabel(stream.destination, "destination")}, last 5 minutes`);
  const points = state.history.get(stream.uid) || [];
  canvas.dataset.points = points.length;
  drawChart(canvas, points);
}

export function initStreams() {
  onChange((what, uid) => {
    if (what === "metrics") {
      const row = document.querySelector(`#stream-rows tr[data-uid="${CSS.escape(uid)}"]`);
      const stream = state.streams.find((s) => s.uid === uid);
      if (row && stream) updateRow(row, stream);
      if (uid === state.selected) renderChart();
    } else if (["streams", "selected", "peers", "devices"].includes(what)) {
      renderRows();
      renderChart();
    }
  });
  window.addEventListener("resize", renderChart);
}
