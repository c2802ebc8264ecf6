// Each role's views. Every view reads and writes through the public API
// with the signed-in key: the console can do nothing the key could not.

import { session, api, h, say, attempt, onLeave, table, shownOnce, when, parseMetrics } from './ui.js';
import { base64ToBytes, bytesToBase64, leafHash, rootFromInclusion, verifyConsistency, verifyNote } from './proofs.js';

const STEPS = ['DECODE', 'FRESHNESS', 'ISSUER_AUTH', 'SIGNATURE', 'REVOCATION', 'HOLDER_BINDING', 'CLAIMS'];
// Distinct, print-safe colours; each series also has its own row in the
// table under the chart, so colour is never the only cue.
const COLOURS = { verified: '#0b6b2e', DECODE: '#7a1c1c', FRESHNESS: '#b35900', ISSUER_AUTH: '#6a3d9a',
  SIGNATURE: '#a4161a', REVOCATION: '#1f4e79', HOLDER_BINDING: '#5c5c00', CLAIMS: '#8c2d6b' };

export function viewsFor(role) {
  const log = { id: 'log', title: 'Log', render: logView };
  if (role === 'operator') {
    return [
      { id: 'overview', title: 'Overview', render: overview },
      { id: 'trust', title: 'Trust registry', render: trust },
      { id: 'lenders', title: 'Lenders and auditors', render: lenders },
      log,
    ];
  }
  if (role === 'auditor') return [log];
  return [
    { id: 'verifications', title: 'Verifications', render: verifications },
    { id: 'webhooks', title: 'Webhooks', render: webhooks },
    { id: 'keys', title: 'API keys', render: keys },
  ];
}

// ---- operator ----------------------------------------------------------

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/// Stacked bars per day: verified, then failures by step.
function chart(items, days) {
  const series = ['verified', ...STEPS];
  const byDay = new Map(days.map((d) => [d, Object.fromEntries(series.map((s) => [s, 0]))]));
  for (const item of items) {
    const day = byDay.get(item.day);
    if (!day) continue;
    day[item.verified ? 'verified' : (item.failed_step ?? 'DECODE')] += item.count;
  }
  const max = Math.max(1, ...[...byDay.values()].map((d) => series.reduce((n, s) => n + d[s], 0)));
  const width = 40 * days.length + 40, height = 220, base = 190;
  const total = items.reduce((n, i) => n + i.count, 0);
  const svg = h('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `Verifications per day, last ${days.length} days: ${total} in all` });
  svg.append(h('line', { x1: 30, y1: base, x2: width, y2: base, stroke: '#1a1a1a' }));
  days.forEach((d, i) => {
    let y = base;
    const x = 36 + i * 40;
    for (const s of series) {
      const n = byDay.get(d)[s];
      if (n === 0) continue;
      const bar = (n / max) * 170;
      y -= bar;
      svg.append(h('rect', { x, y, width: 28, height: bar, fill: COLOURS[s], 'data-series': s, 'data-day': d },
        h('title', {}, `${d}: ${n} ${s === 'verified' ? 'verified' : 'failed at ' + s}`)));
    }
    svg.append(h('text', { x: x + 14, y: base + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#1a1a1a' }, d.slice(8)));
  });
  svg.append(h('text', { x: 2, y: 24, 'font-size': 11, fill: '#1a1a1a' }, String(max)));
  const legend = h('ul', { class: 'legend', 'aria-hidden': 'true' }, series.map((s) => {
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = COLOURS[s];
    return h('li', {}, swatch, s === 'verified' ? 'verified' : s.toLowerCase().replace('_', ' '));
  }));
  const rows = days.filter((d) => series.some((s) => byDay.get(d)[s] > 0)).map((d) => {
    const c = byDay.get(d);
    return [d, h('td', { class: 'num' }, c.verified), ...STEPS.map((s) => h('td', { class: 'num' }, c[s]))];
  });
  return h('div', { id: 'daily-chart' }, svg, legend,
    table('Verifications per day by outcome and failed step', ['Day', 'Verified', ...STEPS.map((s) => `Failed: ${s}`)], rows));
}

async function overview(container) {
  const live = h('div', { class: 'cards', id: 'live' });
  const lag = h('div', { id: 'lag' });
  const outcomes = h('div', { id: 'outcomes' });
  const daily = h('div', {});
  container.append(h('h2', {}, 'Live'), live, h('h2', {}, 'Relay and projectors'), lag,
    h('h2', {}, 'Webhooks and fetches'), outcomes, h('h2', {}, 'Verifications per day (UTC)'), daily);
  const card = (label, value) => h('div', { class: 'card' }, h('div', {}, label), h('div', { class: 'value' }, value));
  const refresh = async () => {
    const metrics = parseMetrics(await (await fetch('/metrics', { cache: 'no-store' })).text());
    const sum = (name, pred = () => true) => metrics.filter((m) => m.name === name && pred(m.labels))
      .reduce((n, m) => n + m.value, 0);
    live.replaceChildren(
      card('Log head', sum('proofline_store_head_position')),
      card('Verified', sum('proofline_verifications_total', (l) => l.outcome === 'verified')),
      card('Failed', sum('proofline_verifications_total', (l) => l.outcome !== 'verified')),
      card('Checkpoint size', sum('proofline_checkpoint_size')),
      card('Requests', sum('http_requests_total')));
    const lags = metrics.filter((m) => m.name === 'proofline_projector_lag_events' || m.name === 'proofline_relay_lag_events');
    lag.replaceChildren(table('Lag in events', ['Who', 'Events behind the log'], lags.map((m) =>
      [m.labels.projector ? `projector ${m.labels.projector}` : 'relay', h('td', { class: 'num' }, m.value)])));
    const by = (name, key) => {
      const counts = new Map();
      for (const m of metrics.filter((x) => x.name === name)) counts.set(m.labels[key] ?? '', (counts.get(m.labels[key] ?? '') ?? 0) + m.value);
      return [...counts].map(([k, v]) => [k, h('td', { class: 'num' }, v)]);
    };
    const [health, lenderPage] = await Promise.all([api('/v1/webhooks/health'), api('/v1/lenders?limit=500')]);
    const names = new Map(lenderPage.items.map((l) => [l.lender_id, l.name]));
    outcomes.replaceChildren(
      table('Webhook delivery health per lender', ['Lender', 'Pending', 'Delivered', 'Failed', 'Last failure'],
        health.items.map((w) => [names.get(w.lender_id) ?? w.lender_id, h('td', { class: 'num' }, w.pending),
          h('td', { class: 'num' }, w.delivered), h('td', { class: w.failed ? 'num bad' : 'num' }, w.failed), when(w.last_failed_at)])),
      table('Webhook attempts by outcome', ['Webhook delivery outcome', 'Count'], by('proofline_webhook_deliveries_total', 'outcome')),
      table('Fetches by outcome', ['Fetch outcome', 'Count'], by('proofline_fetch_total', 'outcome')));
    const today = new Date();
    const days = [...Array(14).keys()].reverse().map((i) => isoDay(new Date(today.getTime() - i * 86400000)));
    const stats = await api(`/v1/stats/daily?from=${days[0]}&to=${days[days.length - 1]}`);
    daily.replaceChildren(chart(stats.items, days));
  };
  await attempt(refresh);
  const timer = setInterval(() => attempt(refresh), 5000);
  onLeave(() => clearInterval(timer));
  const health = await fetch('/health/ready', { cache: 'no-store' });
  container.insertBefore(h('p', { class: health.ok ? 'ok' : 'bad' },
    health.ok ? 'Ready: store, bus and projectors answer.' : `Not ready: ${(await health.json()).detail}`), live.previousSibling);
}

async function trust(container) {
  const issuers = await api('/v1/issuers');
  const rows = [];
  for (const issuer of issuers.items) {
    for (const key of issuer.keys.length ? issuer.keys : [null]) {
      const state = !key ? '' : key.revoked_at ? `revoked ${when(key.revoked_at)}` : key.retired_at ? `retired ${when(key.retired_at)}` : 'active';
      rows.push([issuer.name, h('td', {}, h('code', {}, issuer.did)), issuer.status,
        (issuer.key_sources ?? []).join(', '), key ? h('td', {}, h('code', {}, key.kid)) : '',
        key ? h('td', {}, key.source, key.resolution?.source_url ? h('div', {}, h('code', {}, key.resolution.source_url)) : '') : '',
        state, when(key?.resolution?.resolved_at ?? key?.added_at)]);
    }
  }
  container.append(h('h2', {}, 'Issuers and their keys'),
    table('Issuers', ['Issuer', 'DID', 'Status', 'Key sources allowed', 'Key', 'Source', 'State', 'Last resolved or added'], rows));
  const lists = await api('/v1/status-lists');
  const now = Date.now() / 1000;
  const age = (seconds) => seconds < 120 ? `${Math.round(seconds)} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`;
  container.append(h('h2', {}, 'Status lists'), table('Status lists', ['List', 'Issuer', 'Source', 'Age (since iat)', 'ttl', 'Expires', 'Last changed'],
    lists.items.map((l) => [h('td', {}, h('code', {}, l.uri)), h('td', {}, h('code', {}, l.issuer)),
      l.source === 'fetched' ? `fetched ${when(l.fetched_at)}` : 'posted by the operator',
      age(now - l.iat), l.ttl ? `${l.ttl} s` : '(none: the service default)',
      l.exp ? when(new Date(l.exp * 1000).toISOString()) : '', when(l.recorded_at)])));
  const anchors = await attempt(() => api('/v1/trust-anchors'));
  if (anchors) {
    container.append(h('h2', {}, 'X.509 trust anchors'), table('Trust anchors', ['Name', 'Subject', 'Valid until', 'Added'],
      (anchors.items ?? []).map((a) => [a.name, a.subject ?? '', when(a.not_after), when(a.added_at)])));
  }
}

async function lenders(container) {
  const list = h('div', { id: 'lender-list' });
  const shown = h('div', {});
  // After a command, its position: the list waits until it shows it.
  const load = async (position) => {
    const page = await api(`/v1/lenders?limit=500${position ? `&min_position=${position}` : ''}`);
    list.replaceChildren(table('Lenders', ['Name', 'Contact', 'Status', 'Webhook', 'Registered', 'Actions'],
      page.items.map((l) => [l.name, l.contact_email, l.status, l.webhook_url ?? '', when(l.registered_at),
        h('td', {}, ...(l.status === 'active' ? ['suspend', 'deactivate'] : l.status === 'suspended' ? ['unsuspend'] : ['reactivate'])
          .map((action) => h('button', { type: 'button', 'aria-label': `${action} ${l.name}`, onclick: () => attempt(async () => {
            const done = await api(`/v1/lenders/${l.lender_id}/${action}`, { method: 'POST' });
            say(`${l.name}: ${action} done.`);
            await load(done.position);
          }) }, action)))])));
  };
  const name = h('input', { id: 'lender-name', type: 'text', required: true, maxlength: 200 });
  const email = h('input', { id: 'lender-email', type: 'email', required: true });
  const form = h('form', { onsubmit: (e) => { e.preventDefault(); attempt(async () => {
    const made = await api('/v1/lenders', { method: 'POST', body: { name: name.value, contact_email: email.value } });
    shown.replaceChildren(shownOnce(`API key of ${name.value}`, made.api_key));
    say(`Registered ${name.value}.`);
    form.reset();
    await load(made.position);
  }); } }, h('div', { class: 'row' },
    h('div', {}, h('label', { for: 'lender-name' }, 'Name'), name),
    h('div', {}, h('label', { for: 'lender-email' }, 'Contact email'), email),
    h('button', { type: 'submit', class: 'primary' }, 'Register lender')));
  const auditor = h('input', { id: 'auditor-name', type: 'text', required: true, maxlength: 200 });
  const auditorForm = h('form', { onsubmit: (e) => { e.preventDefault(); attempt(async () => {
    const made = await api('/v1/auditors', { method: 'POST', body: { name: auditor.value } });
    shown.replaceChildren(shownOnce(`API key of auditor ${auditor.value}`, made.api_key));
    say(`Registered auditor ${auditor.value}.`);
    auditorForm.reset();
  }); } }, h('div', { class: 'row' },
    h('div', {}, h('label', { for: 'auditor-name' }, 'Auditor name'), auditor),
    h('button', { type: 'submit', class: 'primary' }, 'Register auditor')));
  container.append(h('h2', {}, 'Register a lender'), form, h('h2', {}, 'Register an auditor'), auditorForm, shown,
    h('h2', {}, 'Lenders'), list);
  await load();
}

// ---- auditor (and operator) -------------------------------------------

const SEEN = 'proofline.console.checkpoint';

async function logView(container) {
  const checkpointBox = h('div', { id: 'checkpoint' });
  const consistencyBox = h('div', { id: 'consistency' });
  const eventBox = h('div', { id: 'event' });
  const tailList = h('ol', { class: 'tail', id: 'tail', 'aria-live': 'off', tabindex: 0, 'aria-label': 'Live tail of the log' });
  container.append(h('h2', {}, 'Latest checkpoint'), checkpointBox, consistencyBox);
  const { note_vkey: vkey } = await api('/v1/log/public-key');
  const latest = await api('/v1/log/checkpoints/latest');
  let checkpoint = null;
  try {
    checkpoint = await verifyNote(latest.note, vkey);
    if (checkpoint.size !== latest.tree_size || bytesToBase64(checkpoint.root) !== latest.root_hash) {
      throw new Error('the note does not say the size and root the API gives');
    }
    checkpointBox.replaceChildren(h('p', { class: 'ok', id: 'checkpoint-state', 'data-state': 'verified' },
      `Verified in this browser: tree size ${checkpoint.size}, signed by ${checkpoint.origin} (Ed25519, WebCrypto).`),
    h('pre', {}, latest.note));
  } catch (e) {
    checkpointBox.replaceChildren(h('p', { class: 'bad', id: 'checkpoint-state', 'data-state': 'failed' },
      `Checkpoint FAILED verification: ${e.message}.`), h('pre', {}, latest.note));
  }
  if (checkpoint) {
    const kept = localStorage.getItem(SEEN);
    let message = 'First checkpoint this browser sees: kept for the next visit.';
    let state = 'first';
    if (kept) {
      try {
        const before = await verifyNote(kept, vkey);
        if (before.size > checkpoint.size) throw new Error(`the log shrank from ${before.size} to ${checkpoint.size}`);
        const proof = await api(`/v1/log/proofs/consistency?from=${before.size}&to=${checkpoint.size}`);
        if (!await verifyConsistency(before.size, checkpoint.size, before.root, checkpoint.root, proof.hashes.map(base64ToBytes))) {
          throw new Error('the consistency proof does not hold');
        }
        message = `Consistent with the checkpoint this browser saw last (size ${before.size} grew to ${checkpoint.size}).`;
        state = 'consistent';
      } catch (e) {
        message = `NOT consistent with the checkpoint this browser saw last: ${e.message}.`;
        state = 'inconsistent';
      }
    }
    consistencyBox.replaceChildren(h('p', { class: state === 'inconsistent' ? 'bad' : 'ok', id: 'consistency-state', 'data-state': state }, message));
    if (state !== 'inconsistent') localStorage.setItem(SEEN, latest.note);
  }

  const position = h('input', { id: 'position', type: 'number', min: 1, required: true, inputmode: 'numeric' });
  container.append(h('h2', {}, 'An event and its inclusion proof'),
    h('form', { onsubmit: (e) => { e.preventDefault(); attempt(() => showEvent(Number(position.value), checkpoint, eventBox)); } },
      h('div', { class: 'row' }, h('div', {}, h('label', { for: 'position' }, 'Position'), position),
        h('button', { type: 'submit', class: 'primary' }, 'Show and prove'))), eventBox,
    h('h2', {}, 'Live tail'), h('p', {}, 'New events as they are appended (Server-Sent Events).'), tailList);
  tail(latest.position, tailList);
}

async function showEvent(position, checkpoint, box) {
  const page = await api(`/v1/events?after=${position - 1}&limit=1`);
  const envelope = page.events[0];
  if (!envelope || envelope.position !== position) throw new Error(`no event at position ${position}`);
  const parts = [h('pre', { id: 'event-json' }, JSON.stringify(envelope, null, 2))];
  if (!checkpoint || position > checkpoint.size) {
    parts.push(h('p', {}, 'No verified checkpoint covers this event yet.'));
  } else {
    const proof = await api(`/v1/log/proofs/inclusion?position=${position}&tree_size=${checkpoint.size}`);
    const leaf = await leafHash(envelope);
    const root = bytesToBase64(leaf) === proof.leaf_hash
      ? await rootFromInclusion(proof.leaf_index, checkpoint.size, leaf, proof.hashes.map(base64ToBytes)) : null;
    const ok = root !== null && bytesToBase64(root) === bytesToBase64(checkpoint.root);
    parts.unshift(h('p', { class: ok ? 'ok' : 'bad', id: 'inclusion-state', 'data-state': ok ? 'included' : 'failed' }, ok
      ? `Included: the event's canonical bytes hash to leaf ${proof.leaf_index}, and the proof leads to the verified root of size ${checkpoint.size}.`
      : 'The inclusion proof FAILED against the verified checkpoint.'));
  }
  box.replaceChildren(...parts);
}

/// Follows `/v1/events/stream` with the key in a header (an EventSource
/// cannot send one), parsing the event stream by hand.
function tail(after, list) {
  const abort = new AbortController();
  onLeave(() => abort.abort());
  (async () => {
    const response = await api(`/v1/events/stream?after=${after}`, { raw: true, signal: abort.signal });
    if (!response.ok) { list.append(h('li', { class: 'bad' }, `The live tail failed (${response.status}).`)); return; }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (!data) continue;
        try {
          const e = JSON.parse(data);
          list.prepend(h('li', {}, h('code', {}, `#${e.position}`), ` ${e.type} on ${e.stream_id} at ${when(e.recorded_at)}`));
          while (list.children.length > 100) list.lastChild.remove();
        } catch { /* a comment or keep-alive */ }
      }
    }
  })().catch((e) => { if (e.name !== 'AbortError') list.append(h('li', { class: 'bad' }, `The live tail stopped: ${e.message}`)); });
}

// ---- lender -------------------------------------------------------------

async function verifications(container) {
  const verified = h('select', { id: 'filter-verified' }, h('option', { value: '' }, 'any'),
    h('option', { value: 'true' }, 'verified'), h('option', { value: 'false' }, 'failed'));
  const from = h('input', { id: 'filter-from', type: 'date' });
  const to = h('input', { id: 'filter-to', type: 'date' });
  const list = h('div', { id: 'verification-list' });
  const detail = h('div', { id: 'verification-detail' });
  let cursor = null;
  const load = async (more = false) => {
    const q = new URLSearchParams({ limit: '50' });
    if (verified.value) q.set('verified', verified.value);
    if (from.value) q.set('from', `${from.value}T00:00:00Z`);
    if (to.value) q.set('to', `${to.value}T23:59:59Z`);
    if (more && cursor) q.set('cursor', cursor);
    const page = await api(`/v1/verifications?${q}`);
    cursor = page.next_cursor;
    list.replaceChildren(table('Verifications', ['When', 'Outcome', 'Failed step', 'Issuer', 'Details'],
      page.items.map((v) => [when(v.verified_at ?? v.recorded_at), v.verified ? 'verified' : 'failed', v.failed_step ?? '',
        h('td', {}, h('code', {}, v.issuer ?? '')),
        h('td', {}, h('button', { type: 'button', 'aria-label': `Details of ${v.verification_id}`,
          onclick: () => attempt(() => showVerification(v.verification_id, detail)) }, 'Details'))])),
    cursor ? h('button', { type: 'button', onclick: () => attempt(() => load(true)) }, 'Next page') : '');
  };
  container.append(h('form', { onsubmit: (e) => { e.preventDefault(); attempt(() => load()); } }, h('div', { class: 'row' },
    h('div', {}, h('label', { for: 'filter-verified' }, 'Outcome'), verified),
    h('div', {}, h('label', { for: 'filter-from' }, 'From'), from),
    h('div', {}, h('label', { for: 'filter-to' }, 'To'), to),
    h('button', { type: 'submit', class: 'primary' }, 'Filter'))), list, detail);
  await load();
}

async function showVerification(id, box) {
  const v = await api(`/v1/verifications/${id}`);
  const download = h('button', { type: 'button', onclick: () => attempt(async () => {
    const evidence = await api(`/v1/verifications/${id}/evidence`);
    const url = URL.createObjectURL(new Blob([JSON.stringify(evidence, null, 2)], { type: 'application/json' }));
    const a = h('a', { href: url, download: `evidence-${id}.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    say('Evidence downloaded: check it offline with `proofline log verify-evidence FILE --public-key KEY`.');
  }) }, 'Download evidence');
  box.replaceChildren(h('h2', {}, `Verification ${id}`),
    h('p', { class: v.verified ? 'ok' : 'bad' }, v.verified ? 'Verified' : `Failed at ${v.failed_step}: ${v.reason ?? ''}`),
    table('Steps', ['Step', 'Passed', 'Detail'], (v.steps ?? []).map((s) => [s.name, s.passed ? 'yes' : 'no', s.detail ?? ''])),
    h('p', {}, `Disclosed claims (names only; values never enter the log): ${(v.disclosed_claim_names ?? v.disclosed_claims ?? []).join(', ') || 'none'}`), download);
  box.querySelector('h2').scrollIntoView?.();
}

async function webhooks(container) {
  const me = await api('/v1/lenders/me');
  const url = h('input', { id: 'webhook-url', type: 'url', required: true, value: me.webhook?.url ?? '', placeholder: 'https://' });
  const shown = h('div', {});
  const list = h('div', { id: 'delivery-list' });
  const load = async (position) => {
    const page = await api(`/v1/webhooks/deliveries?limit=100${position ? `&min_position=${position}` : ''}`);
    list.replaceChildren(table('Deliveries', ['Event', 'Type', 'Status', 'Attempts', 'Last error', 'Action'],
      page.items.map((d) => [h('td', {}, h('code', {}, d.delivery_id ?? d.id)), d.event_type ?? '', d.status,
        h('td', { class: 'num' }, d.attempts ?? ''), d.last_error ?? '',
        h('td', {}, d.status === 'failed' ? h('button', { type: 'button', 'aria-label': `Redeliver ${d.delivery_id ?? d.id}`,
          onclick: () => attempt(async () => {
            const done = await api(`/v1/webhooks/deliveries/${d.delivery_id ?? d.id}/retry`, { method: 'POST' });
            say('Redelivery asked for.');
            await load(done?.position);
          }) }, 'Redeliver') : '')])));
  };
  container.append(h('h2', {}, 'Endpoint'), h('form', { onsubmit: (e) => { e.preventDefault(); attempt(async () => {
    const set = await api('/v1/lenders/me/webhook', { method: 'PUT', body: { url: url.value } });
    shown.replaceChildren(shownOnce('Webhook signing secret', set.secret));
    say('Webhook endpoint saved.');
  }); } }, h('div', { class: 'row' }, h('div', {}, h('label', { for: 'webhook-url' }, 'Webhook URL'), url),
    h('button', { type: 'submit', class: 'primary' }, 'Save endpoint'))), shown,
  h('h2', {}, 'Deliveries'), h('button', { type: 'button', onclick: () => attempt(load) }, 'Refresh'), list);
  await load();
}

async function keys(container) {
  const list = h('div', { id: 'key-list' });
  const shown = h('div', {});
  const load = async () => {
    const me = await api('/v1/lenders/me');
    list.replaceChildren(table('API keys', ['Prefix', 'Created', 'Valid until', 'Action'], me.keys.map((k) => [
      h('td', {}, h('code', {}, k.prefix)), when(k.created_at), k.current ? 'current' : when(k.valid_until),
      h('td', {}, k.current ? '' : h('button', { type: 'button', 'aria-label': `Revoke key ${k.prefix}`, onclick: () => attempt(async () => {
        await api(`/v1/lenders/me/api-keys/${k.prefix}`, { method: 'DELETE' });
        say(`Key ${k.prefix} revoked.`);
        await load();
      }) }, 'Revoke'))])));
  };
  const grace = h('input', { id: 'grace', type: 'number', min: 0, value: 3600 });
  container.append(list, h('h2', {}, 'Rotate'), h('form', { onsubmit: (e) => { e.preventDefault(); attempt(async () => {
    const made = await api('/v1/lenders/me/api-keys/rotate', { method: 'POST', body: { grace_period_seconds: Number(grace.value) } });
    shown.replaceChildren(shownOnce('New API key', made.api_key));
    say('Rotated: this console now signs in with the new key.');
    session.key = made.api_key;
    await load();
  }); } }, h('div', { class: 'row' }, h('div', {}, h('label', { for: 'grace' }, 'Grace for the previous key (seconds)'), grace),
    h('button', { type: 'submit', class: 'primary' }, 'Rotate key'))), shown);
  await load();
}
