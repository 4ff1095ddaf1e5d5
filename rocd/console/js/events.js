// WS /events, kept open: reconnects with a growing pause (0.5 s to 5 s) and says when it
// is live. A browser cannot set headers on a WebSocket, so the token goes as ?token=.

import { getToken } from "./api.js";

export class EventFeed {
  constructor(kinds, { onEvent, onState, onOpen }) {
    this.kinds = kinds;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onOpen = onOpen;
    this.ws = null;
    this.pause = 500; // ms before the next try
    this.timer = null;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ kind: this.kinds });
    const token = getToken();
    if (token) query.set("token", token);
    return `${scheme}//${location.host}/events?${query}`;
  }

  start() {
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
    }
    this.onState("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.pause = 500;
      this.onState("live");
      this.onOpen();
    };
    ws.onmessage = (msg) => {
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch {
        return;
      }
      this.onEvent(event);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.onState("closed", ev.reason || "");
      this.timer = setTimeout(() => this.start(), this.pause);
      this.pause = Math.min(this.pause * 2, 5000);
    };
  }
}
