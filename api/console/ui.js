// What every view shares: the session (the key lives here, in memory
// only), the API client, DOM building without innerHTML, the status line.

export const session = { key: null, role: null, leave: [] };

export class Problem extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

/// Calls the public API with the session's key; the parsed JSON answer,
/// or a Problem with the problem+json detail.
export async function api(path, { method = 'GET', body, raw = false, signal } = {}) {
  if (!session.key) throw new Problem(401, 'signed out', 'BAD_CREDENTIALS');
  const headers = { Authorization: `Bearer ${session.key}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, signal, cache: 'no-store', credentials: 'omit',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (raw) return response;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!response.ok) {
    throw new Problem(response.status, data?.detail ?? data?.title ?? response.statusText, data?.code);
  }
  return data;
}

/// An element: `h('td', {class: 'num'}, '3')`. Strings become text nodes,
/// never markup; `on*` attributes become listeners.
export function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'rect', 'g', 'text', 'title', 'line'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/// The status line, read out by screen readers.
export function say(text, error = false) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.className = error ? 'status error' : 'status';
}

/// Runs `work`, saying its failure on the status line.
export async function attempt(work) {
  try {
    return await work();
  } catch (e) {
    say(e instanceof Problem ? `${e.message} (${e.status}${e.code ? ' ' + e.code : ''})` : String(e.message ?? e), true);
    return undefined;
  }
}

/// Registers what to stop when the view is left (timers, live tails).
export function onLeave(stop) {
  session.leave.push(stop);
}

/// A table from rows of cells; `head` names the columns.
export function table(caption, head, rows) {
  // Focusable, so keyboard users can scroll a wide table.
  return h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': caption }, h('table', {},
    h('caption', { class: 'skip' }, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.length === 0
      ? h('tr', {}, h('td', { colspan: head.length }, 'None yet.'))
      : rows.map((cells) => h('tr', {}, cells.map((c) => (c instanceof Node && c.tagName === 'TD') ? c : h('td', {}, c)))))));
}

/// A secret shown once, with what to do with it.
export function shownOnce(label, value) {
  return h('div', { class: 'secret', role: 'alert' },
    h('p', {}, `${label} (shown once: keep it now):`), h('pre', {}, h('code', {}, value)));
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

/// Prometheus text to [{name, labels, value}].
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
