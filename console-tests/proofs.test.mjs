// The console's proofs (api/console/proofs.js) in Node: RFC 9162 proofs
// against the RFC's own recursive definitions, exhaustively for small
// trees; signed notes with real Ed25519 keys; RFC 8785's example.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, rootFromInclusion, verifyConsistency, verifyNote, parseVerifierKey, bytesToBase64 } from '../api/console/proofs.js';

const sha = async (...parts) => new Uint8Array(await crypto.subtle.digest('SHA-256', Buffer.concat(parts.map((p) => Buffer.from(p)))));
const leaf = (i) => sha([0], Buffer.from(`leaf ${i}`));
const split = (n) => 2 ** Math.floor(Math.log2(n - 1)); // largest power of two < n

// RFC 9162 2.1.1: MTH.
async function mth(leaves) {
  if (leaves.length === 1) return leaves[0];
  const k = split(leaves.length);
  return sha([1], await mth(leaves.slice(0, k)), await mth(leaves.slice(k)));
}
// 2.1.3.1: PATH(m, D[n]).
async function path(m, leaves) {
  if (leaves.length === 1) return [];
  const k = split(leaves.length);
  return m < k ? [...await path(m, leaves.slice(0, k)), await mth(leaves.slice(k))]
    : [...await path(m - k, leaves.slice(k)), await mth(leaves.slice(0, k))];
}
// 2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
async function subproof(m, leaves, b) {
  const n = leaves.length;
  if (m === n) return b ? [] : [await mth(leaves)];
  const k = split(n);
  return m <= k ? [...await subproof(m, leaves.slice(0, k), b), await mth(leaves.slice(k))]
    : [...await subproof(m - k, leaves.slice(k), false), await mth(leaves.slice(0, k))];
}

test('every inclusion proof of trees up to 24 leaves leads to the root, and a changed one does not', async () => {
  const leaves = await Promise.all([...Array(24).keys()].map(leaf));
  for (let n = 1; n <= 24; n++) {
    const tree = leaves.slice(0, n);
    const root = await mth(tree);
    for (let m = 0; m < n; m++) {
      const proof = await path(m, tree);
      assert.deepEqual(await rootFromInclusion(m, n, tree[m], proof), root, `leaf ${m} of ${n}`);
      const other = await rootFromInclusion(m, n, tree[(m + 1) % n], proof);
      if (n > 1) assert.notDeepEqual(other, root);
      if (proof.length) {
        const bent = proof.map((h, i) => (i === 0 ? Uint8Array.from(h, (x, j) => (j === 0 ? x ^ 1 : x)) : h));
        assert.notDeepEqual(await rootFromInclusion(m, n, tree[m], bent), root);
        assert.equal(await rootFromInclusion(m, n, tree[m], proof.slice(1)), null);
      }
      assert.equal(await rootFromInclusion(n, n, tree[m], proof), null);
    }
  }
});

test('every consistency proof of trees up to 24 leaves holds, and fails for another first tree', async () => {
  const leaves = await Promise.all([...Array(24).keys()].map(leaf));
  for (let n = 1; n <= 24; n++) {
    const second = await mth(leaves.slice(0, n));
    for (let m = 1; m <= n; m++) {
      const first = await mth(leaves.slice(0, m));
      const proof = await subproof(m, leaves.slice(0, n), true);
      assert.ok(await verifyConsistency(m, n, first, second, proof), `${m} to ${n}`);
      const forged = await mth([await leaf(99), ...leaves.slice(1, m)]);
      assert.ok(!await verifyConsistency(m, n, forged, second, proof), `forged ${m} to ${n}`);
      if (m < n) assert.ok(!await verifyConsistency(m, n, first, second, proof.slice(0, -1)));
    }
  }
  assert.ok(!await verifyConsistency(5, 4, await leaf(0), await leaf(0), []));
});

async function keyPair(name) {
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  const id = (await sha(Buffer.from(name + '\n'), [1], raw)).slice(0, 4);
  const vkey = `${name}+${Buffer.from(id).toString('hex')}+${bytesToBase64(Uint8Array.of(1, ...raw))}`;
  return { pair, id, vkey };
}

async function note(name, key, body) {
  const signature = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key.pair.privateKey, Buffer.from(body)));
  return `${body}\n\u2014 ${name} ${bytesToBase64(Uint8Array.of(...key.id, ...signature))}\n`;
}

test('a signed checkpoint verifies with its key, and not changed or with another key', async () => {
  const name = 'console.test/proofline';
  // Keys until one whose base64 holds a '+' (the separator of a verifier key).
  let key;
  for (let i = 0; i < 200; i++) {
    key = await keyPair(name);
    if (key.vkey.split('+').length > 3) break;
  }
  assert.ok(key.vkey.split('+').length > 3, 'a key with + in its base64');
  assert.equal(parseVerifierKey(key.vkey).name, name);
  const root = bytesToBase64(await leaf(1));
  const body = `${name}\n7\n${root}\n`;
  const signed = await note(name, key, body);
  const checkpoint = await verifyNote(signed, key.vkey);
  assert.equal(checkpoint.size, 7);
  assert.equal(bytesToBase64(checkpoint.root), root);
  await assert.rejects(verifyNote(signed.replace('\n7\n', '\n8\n'), key.vkey), /does not verify/);
  await assert.rejects(verifyNote(signed, (await keyPair(name)).vkey), /no signature by the log key/);
  await assert.rejects(verifyNote(signed, (await keyPair('other.example/log')).vkey), /origin/);
  await assert.rejects(verifyNote(body, key.vkey), /blank line/);
});

test('canonical JSON is RFC 8785 (its own example)', () => {
  const value = JSON.parse('{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],'
    + '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}');
  assert.equal(canonicalJson(value),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    + '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  // Keys by UTF-16 code units: U+1F600 (a surrogate pair) sorts before U+FB33.
  assert.equal(canonicalJson({ '\ufb33': 1, '\u{1f600}': 2, a: 3, 'A': 4 }), '{"A":4,"a":3,"\u{1f600}":2,"\ufb33":1}');
  assert.throws(() => canonicalJson({ x: NaN }));
});
