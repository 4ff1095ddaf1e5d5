// A small chart on a canvas: latency and target (ms, left axis) and loss (% per second,
// bars, right axis) over the last minutes. No library: a few lines of 2D drawing.

import { HISTORY_S } from "./store.js";

const COLORS = { latency: "#1f6feb", target: "#8b949e", loss: "rgba(214, 58, 58, 0.75)", grid: "#e3e6ea", text: "#57606a" };

function niceMax(value) {
  const steps = [1, 2, 5];
  let scale = 1;
  while (true) {
    for (const s of steps) if (s * scale >= value) return s * scale;
    scale *= 10;
  }
}

export function drawChart(canvas, points) {
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = canvas.clientWidth || canvas.width;
  const cssHeight = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(cssWidth * ratio)) canvas.width = Math.round(cssWidth * ratio);
  if (canvas.height !== Math.round(cssHeight * ratio)) canvas.height = Math.round(cssHeight * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssWidth, cssHeight);
  const pad = { left: 48, right: 44, top: 10, bottom: 22 };
  const w = cssWidth - pad.left - pad.right;
  const hgt = cssHeight - pad.top - pad.bottom;
  const now = points.length ? points[points.length - 1].t : Date.now() / 1000;
  const x = (t) => pad.left + w * (1 - (now - t) / HISTORY_S);
  const maxMs = niceMax(Math.max(10, ...points.map((p) => Math.max(p.latency, p.target) * 1.15)));
  const maxLoss = Math.max(0.05, niceMax(Math.max(...points.map((p) => p.loss * 100), 1)) / 100);
  const yMs = (ms) => pad.top + hgt * (1 - ms / maxMs);
  const yLoss = (r) => pad.top + hgt * (1 - r / maxLoss);

  g.font = "11px system-ui, sans-serif";
  g.strokeStyle = COLORS.grid;
  g.fillStyle = COLORS.text;
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i += 1) {
    const y = pad.top + (hgt * i) / 4;
    g.beginPath();
    g.moveTo(pad.left, y);
    g.lineTo(pad.left + w, y);
    g.stroke();
    g.textAlign = "right";
    g.fillText(`${Math.round(maxMs * (1 - i / 4))} ms`, pad.left - 6, y + 4);
    g.textAlign = "left";
    g.fillText(`${(maxLoss * 100 * (1 - i / 4)).toFixed(1)} %`, pad.left + w + 6, y + 4);
  }
  g.textAlign = "center";
  for (let m = 0; m <= HISTORY_S / 60; m += 1) {
    g.fillText(m === 0 ? "now" : `-${m} min`, pad.left + w * (1 - (m * 60) / HISTORY_S), cssHeight - 6);
  }
  if (!points.length) return;
  const bar = Math.max(1, w / HISTORY_S);
  g.fillStyle = COLORS.loss;
  for (const p of points) {
    if (p.loss > 0) g.fillRect(x(p.t) - bar / 2, yLoss(p.loss), bar, pad.top + hgt - yLoss(p.loss));
  }
  const line = (key, color, dash) => {
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.setLineDash(dash);
    g.beginPath();
    points.forEach((p, i) => (i ? g.lineTo(x(p.t), yMs(p[key])) : g.moveTo(x(p.t), yMs(p[key]))));
    g.stroke();
    g.setLineDash([]);
  };
  line("target", COLORS.target, [5, 4]);
  line("latency", COLORS.latency, []);
}
