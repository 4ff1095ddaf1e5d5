// A few DOM helpers: build elements, keep keyed lists in place, format numbers.

const PROPS = new Set(["value", "checked", "disabled", "selected", "hidden", "indeterminate"]);

/** h("tag.class", {attr: value, onclick: fn}, ...children) */
export function h(spec, props, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.classList.add(...String(v).split(/\s+/).filter(Boolean));
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Make `container`'s children follow `items` by key: existing elements are updated in
 * place (an input being edited keeps its focus), new ones made, gone ones removed.
 */
export function sync(container, items, keyOf, make, update) {
  const old = new Map();
  for (const el of container.children) if (el.dataset.key) old.set(el.dataset.key, el);
  let i = 0;
  for (const item of items) {
    const key = keyOf(item);
    let el = old.get(key);
    if (el) old.delete(key);
    else {
      el = make(item);
      el.dataset.key = key;
    }
    update(el, item);
    if (container.children[i] !== el) container.insertBefore(el, container.children[i] || null);
    i += 1;
  }
  for (const el of old.values()) el.remove();
}

/** Set an input's value unless the user is editing it. */
export function setValue(input, value) {
  if (document.activeElement !== input && !input.matches(".dragging")) input.value = value;
}

export function text(el, value) {
  const s = String(value);
  if (el.textContent !== s) el.textContent = s;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

export function fmtPct(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "–";
  return `${(ratio * 100).toFixed(ratio < 0.01 ? 2 : 1)} %`;
}

export function fmtBitrate(bps) {
  if (!bps) return "–";
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

export function fmtAgo(unix) {
  if (!unix) return "–";
  const s = Math.max(0, Date.now() / 1000 - unix);
  if (s < 2) return "now";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return new Date(unix * 1000).toLocaleString();
}

/** A button that acts on the second click within 3 s (the first arms it). */
export function confirmButton(label, armedLabel, action, props = {}) {
  let timer = null;
  const button = h("button.ghost.danger", {
    type: "button",
    ...props,
    onclick: async () => {
      if (!button.classList.contains("armed")) {
        button.classList.add("armed");
        button.textContent = armedLabel;
        timer = setTimeout(() => {
          button.classList.remove("armed");
          button.textContent = label;
        }, 3000);
        return;
      }
      clearTimeout(timer);
      button.classList.remove("armed");
      button.textContent = label;
      button.disabled = true;
      try {
        await action();
      } finally {
        button.disabled = false;
      }
    },
  }, label);
  return button;
}

/**
 * A name shown as text, edited in place: the pencil turns it into an input; Enter saves
 * (through `save`, which may throw: the edit stays open), Escape cancels.
 */
export function editableName(save, testid) {
  const label = h("span.name-text", { "data-testid": testid });
  const input = h("input.name-input", { hidden: true, maxlength: 64, "aria-label": "new name" });
  const pencil = h("button.ghost.icon", { type: "button", title: "rename", "aria-label": "rename" }, "✎");
  const box = h("span.editable", {}, label, input, pencil);
  const close = () => {
    input.hidden = true;
    label.hidden = false;
    pencil.hidden = false;
  };
  pencil.addEventListener("click", () => {
    input.value = label.textContent;
    label.hidden = true;
    pencil.hidden = true;
    input.hidden = false;
    input.focus();
    input.select();
  });
  input.addEventListener("keydown", async (ev) => {
    if (ev.key === "Escape") close();
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    input.disabled = true;
    try {
      await save(input.value);
      label.textContent = input.value;
      close();
    } catch {
      // reported by `save`; the edit stays open to be corrected
    } finally {
      input.disabled = false;
      if (!input.hidden) input.focus();
    }
  });
  box.setName = (name) => text(label, name);
  return box;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
