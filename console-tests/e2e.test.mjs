// The console end to end: a real Proofline (embedded store) on a free
// port, headless Chromium (Debian's) driven by playwright-core, axe-core
// on every view. Screenshots go to console-tests/screenshots/ (not
// committed).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

const root = new URL('..', import.meta.url).pathname;
const bin = process.env.PROOFLINE_BIN ?? join(root, 'target/debug/proofline');
const shots = join(root, 'console-tests/screenshots');
const axeSource = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

let server, base, data, env, browser, operatorKey, lenderKey, cspViolations = [];

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function until(what, seconds, probe) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function call(key, path, options = {}) {
  const response = await fetch(base + path, {
    method: options.method ?? 'GET',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const body = await response.json().catch(() => null);
  return { status: response.status, body };
}

/// A verification of the demo's credential, made through the API.
async function verify() {
  execFileSync(bin, ['demo', '--url', base], { env, stdio: 'pipe' });
  const request = JSON.parse(readFileSync(join(data, 'demo/request.json'), 'utf8'));
  const key = readFileSync(join(data, 'demo/lender.key'), 'utf8').trim();
  const made = await call(key, '/v1/verifications', { method: 'POST', body: request });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  return { key, ...made.body };
}

async function page(width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  const p = await context.newPage();
  p.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });
  await p.goto(`${base}/console/`);
  return p;
}

async function signIn(p, key) {
  await p.getByLabel('API key').fill(key);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.waitForSelector('#sign-out:not([hidden])');
}

/// axe-core on the page as it is: no serious or critical violation.
async function accessible(p, view) {
  await p.evaluate(axeSource);
  const result = await p.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `${view}: ${JSON.stringify(serious)}`);
}

async function shoot(p, name) {
  await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function view(p, title) {
  await p.getByRole('button', { name: title, exact: true }).click();
  await p.waitForSelector(`#view-title:text-is("${title}")`);
}

before(async () => {
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  data = mkdtempSync(join(tmpdir(), 'proofline-console-'));
  base = `http://127.0.0.1:${await freePort()}`;
  env = {
    ...process.env,
    PROOFLINE_DATA_DIR: data,
    PROOFLINE_BIND: base.slice('http://'.length),
    PROOFLINE_LOG_ORIGIN: 'console.test/proofline',
    PROOFLINE_CHECKPOINT_EVERY_SECONDS: '1',
    PROOFLINE_WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8',
    PROOFLINE_WEBHOOK_RETRY_SCHEDULE: '1',
    PROOFLINE_WEBHOOK_CONNECT_TIMEOUT_SECONDS: '1',
  };
  server = spawn(bin, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (d) => { log = (log + d).slice(-20000); });
  server.on('exit', (code) => { if (code) console.error(`proofline exited ${code}:\n${log}`); });
  await until('the service to be ready', 60, async () => (await fetch(`${base}/health/ready`)).ok);
  operatorKey = readFileSync(join(data, 'operator.key'), 'utf8').trim();
  const made = await verify();
  lenderKey = made.key;
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rmSync(data, { recursive: true, force: true });
});

test('the console is served with a strict Content Security Policy', async () => {
  const response = await fetch(`${base}/console/`);
  assert.equal(response.status, 200);
  const csp = response.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal((await fetch(`${base}/console/../v1/lenders`)).status, 401);
  assert.equal((await fetch(`${base}/console/secret.key`)).status, 404);
});

test('the sign-in view is accessible and signs in from the keyboard alone', async () => {
  const p = await page();
  await accessible(p, 'sign-in');
  await shoot(p, 'sign-in');
  // Tab from the top: the skip link, the key field, the button.
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement.id), 'api-key');
  await p.keyboard.type('not-a-key');
  await p.keyboard.press('Enter');
  await p.getByText('That key is not valid.').waitFor();
  await p.getByLabel('API key').focus();
  await p.keyboard.type(operatorKey);
  await p.keyboard.press('Enter');
  await p.waitForSelector('#sign-out:not([hidden])');
  await p.context().close();
});

test('an operator sees a verification in the chart, the registry, and registers a lender', async () => {
  const p = await page();
  await signIn(p, operatorKey);
  const today = new Date().toISOString().slice(0, 10);
  const row = p.locator('#daily-chart tbody tr', { hasText: today });
  await row.waitFor();
  assert.ok(Number(await row.locator('td').nth(1).textContent()) >= 1);
  assert.ok(await p.locator('#daily-chart rect[data-series="verified"]').count() >= 1);
  await shoot(p, 'operator-overview');
  await accessible(p, 'overview');
  await view(p, 'Trust registry');
  await p.getByText('Proofline Demo Issuer').first().waitFor();
  // The demo's status list, posted by the operator, with its age.
  const list = p.locator('tr', { hasText: 'posted by the operator' }).first();
  await list.waitFor();
  assert.match(await list.textContent(), /\d+ (s|min|h)/);
  await shoot(p, 'operator-trust');
  await accessible(p, 'trust registry');
  await view(p, 'Lenders and auditors');
  await p.getByLabel('Name', { exact: true }).fill('Console Lender');
  await p.getByLabel('Contact email').fill('ops@console.example');
  await p.getByRole('button', { name: 'Register lender' }).click();
  const secret = await p.locator('.secret code').textContent();
  assert.ok(secret.length > 20);
  await p.getByRole('button', { name: 'suspend Console Lender', exact: true }).click();
  await p.locator('#lender-list tr', { hasText: 'Console Lender' }).getByText('suspended').waitFor();
  await shoot(p, 'operator-lenders');
  await accessible(p, 'lenders');
  await p.context().close();
});

test('an auditor sees the checkpoint verified, proves an event and follows the tail', async () => {
  const made = await call(operatorKey, '/v1/auditors', { method: 'POST', body: { name: 'Console Auditor' } });
  assert.equal(made.status, 201);
  const p = await page();
  await signIn(p, made.body.api_key);
  await p.waitForSelector('#checkpoint-state');
  assert.equal(await p.getAttribute('#checkpoint-state', 'data-state'), 'verified', await p.textContent('#checkpoint'));
  assert.equal(await p.getAttribute('#consistency-state', 'data-state'), 'first');
  await p.getByLabel('Position').fill('3');
  await p.getByRole('button', { name: 'Show and prove' }).click();
  await p.waitForSelector('#inclusion-state');
  assert.equal(await p.getAttribute('#inclusion-state', 'data-state'), 'included', await p.textContent('#event'));
  // A new event shows in the live tail.
  await call(operatorKey, '/v1/lenders', { method: 'POST', body: { name: 'Tail Lender', contact_email: 't@console.example' } });
  await p.locator('#tail li', { hasText: 'LenderRegistered' }).first().waitFor();
  await shoot(p, 'auditor-log');
  await accessible(p, 'log');
  // Later, a grown log: consistent with the checkpoint this browser kept.
  const before = (await call(operatorKey, '/v1/log/checkpoints/latest')).body.tree_size;
  await call(operatorKey, '/v1/lenders', { method: 'POST', body: { name: 'Later Lender', contact_email: 'l@console.example' } });
  await until('a larger checkpoint', 30, async () => (await call(operatorKey, '/v1/log/checkpoints/latest')).body.tree_size > before);
  await p.reload();
  await signIn(p, made.body.api_key);
  await p.waitForSelector('#consistency-state');
  assert.equal(await p.getAttribute('#consistency-state', 'data-state'), 'consistent', await p.textContent('#consistency'));
  // A forged checkpoint (its root changed, the signature kept) is marked failed.
  await p.route('**/v1/log/checkpoints/latest', async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    const lines = body.note.split('\n');
    lines[2] = Buffer.alloc(32, 7).toString('base64');
    body.note = lines.join('\n');
    body.root_hash = lines[2];
    await route.fulfill({ response, json: body });
  });
  await p.reload();
  await signIn(p, made.body.api_key);
  await p.waitForSelector('#checkpoint-state');
  assert.equal(await p.getAttribute('#checkpoint-state', 'data-state'), 'failed');
  assert.match(await p.textContent('#checkpoint-state'), /FAILED/);
  await shoot(p, 'auditor-forged-checkpoint');
  await p.context().close();
});

test('a lender sees its verification, its steps, redelivers a failed webhook, rotates its key', async () => {
  const p = await page();
  await signIn(p, lenderKey);
  const first = (await call(lenderKey, '/v1/verifications?limit=1')).body.items[0];
  await p.getByRole('button', { name: `Details of ${first.verification_id}` }).click();
  await p.locator('#verification-detail').getByText('HOLDER_BINDING').waitFor();
  assert.match(await p.textContent('#verification-detail'), /Disclosed claims.*given_name/);
  await shoot(p, 'lender-verifications');
  await accessible(p, 'verifications');
  // Evidence waits for a checkpoint to cover the verification (409 until then).
  await until('evidence', 30, async () =>
    (await call(lenderKey, `/v1/verifications/${first.verification_id}/evidence`)).status === 200);
  const download = p.waitForEvent('download');
  await p.getByRole('button', { name: 'Download evidence' }).click();
  const file = await download;
  assert.match(file.suggestedFilename(), /^evidence-.*\.json$/);

  // A receiver that refuses: the delivery fails, the lender redelivers.
  await view(p, 'Webhooks');
  const closed = await freePort();
  await p.getByLabel('Webhook URL').fill(`https://127.0.0.1:${closed}/hook`);
  await p.getByRole('button', { name: 'Save endpoint' }).click();
  assert.match(await p.locator('.secret code').textContent(), /^whsec_/);
  await verify();
  const failed = await until('a failed delivery', 60, async () => {
    const items = (await call(lenderKey, '/v1/webhooks/deliveries?status=failed')).body.items;
    return items[0];
  });
  await p.getByRole('button', { name: 'Refresh' }).click();
  await p.getByRole('button', { name: `Redeliver ${failed.delivery_id}` }).click();
  await p.getByText('Redelivery asked for.').waitFor();
  await until('a new attempt', 30, async () => {
    const items = (await call(lenderKey, '/v1/webhooks/deliveries')).body.items;
    const again = items.find((d) => d.delivery_id === failed.delivery_id);
    return again.attempts > failed.attempts;
  });
  await shoot(p, 'lender-webhooks');
  await accessible(p, 'webhooks');

  await view(p, 'API keys');
  await p.getByRole('button', { name: 'Rotate key' }).click();
  const fresh = (await p.locator('.secret code').textContent()).trim();
  const previous = (await call(fresh, '/v1/lenders/me')).body.keys.find((k) => !k.current);
  await p.getByRole('button', { name: `Revoke key ${previous.prefix}` }).click();
  await p.getByText(`Key ${previous.prefix} revoked.`).waitFor();
  assert.equal((await call(lenderKey, '/v1/lenders/me')).status, 401, 'the old key is revoked');
  assert.equal((await call(fresh, '/v1/lenders/me')).status, 200);
  lenderKey = fresh;
  await shoot(p, 'lender-keys');
  await accessible(p, 'keys');

  // Signed out: no trace of the key anywhere the page can store.
  await p.getByRole('button', { name: 'Sign out' }).click();
  await p.getByText('Signed out').waitFor();
  const stored = await p.evaluate(() => JSON.stringify({
    local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie,
    input: document.getElementById('api-key').value,
  }));
  assert.ok(!stored.includes(fresh) && !stored.includes(fresh.slice(0, 16)), stored);
  await p.context().close();
});

test('the operator sees the lender whose webhook failed', async () => {
  const p = await page();
  await signIn(p, operatorKey);
  const row = p.locator('#outcomes tr', { hasText: 'Demo Lender' });
  await row.waitFor();
  assert.ok(Number(await row.locator('td').nth(3).textContent()) >= 1, await row.textContent());
  await p.locator('#outcomes').screenshot({ path: join(shots, 'operator-webhook-health.png') });
  await p.context().close();
});

test('on a phone the lender views fit the width', async () => {
  const p = await page(390);
  await signIn(p, lenderKey);
  await p.locator('#verification-list table').waitFor();
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await shoot(p, 'lender-phone');
  await accessible(p, 'phone');
  await p.context().close();
});

test('no Content Security Policy violation in any view', () => {
  assert.deepEqual(cspViolations, []);
});
