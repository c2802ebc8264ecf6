// The console's shell: sign in (the key kept in memory only), find the
// key's role, show that role's views, sign out.

import { session, api, h, say, Problem } from './ui.js';
import { viewsFor } from './views.js';

const $ = (id) => document.getElementById(id);

/// The key's role, asking routes only that role may use.
async function roleOf() {
  try {
    await api('/v1/lenders/me');
    return 'lender';
  } catch (e) {
    if (!(e instanceof Problem) || e.status !== 403) throw e;
  }
  try {
    await api('/v1/lenders?limit=1');
    return 'operator';
  } catch (e) {
    if (!(e instanceof Problem) || e.status !== 403) throw e;
  }
  await api('/v1/events?limit=1');
  return 'auditor';
}

function leaveView() {
  for (const stop of session.leave.splice(0)) {
    try { stop(); } catch { /* already stopped */ }
  }
}

async function show(view, button) {
  leaveView();
  for (const b of $('nav').querySelectorAll('button')) b.removeAttribute('aria-current');
  button?.setAttribute('aria-current', 'page');
  const container = $('view');
  container.replaceChildren(h('h1', { id: 'view-title' }, view.title));
  say('');
  try {
    await view.render(container);
  } catch (e) {
    say(e.message ?? String(e), true);
  }
  $('main').focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $('api-key');
  session.key = input.value.trim();
  input.value = '';
  say('Signing in…');
  try {
    session.role = await roleOf();
  } catch (e) {
    session.key = null;
    say(e instanceof Problem && e.status === 401 ? 'That key is not valid.' : `Cannot sign in: ${e.message}`, true);
    return;
  }
  $('sign-in').hidden = true;
  $('sign-out').hidden = false;
  $('who').textContent = `Signed in as ${session.role}`;
  const views = viewsFor(session.role);
  const nav = $('nav');
  nav.replaceChildren(...views.map((view) => {
    const button = h('button', { type: 'button', 'data-view': view.id }, view.title);
    button.addEventListener('click', () => show(view, button));
    return button;
  }));
  await show(views[0], nav.querySelector('button'));
}

function signOut() {
  leaveView();
  session.key = null;
  session.role = null;
  $('nav').replaceChildren();
  $('view').replaceChildren();
  $('who').textContent = '';
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  say('Signed out: the key is forgotten.');
  $('api-key').focus();
}

$('sign-in-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', signOut);
