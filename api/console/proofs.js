// What an auditor checks in the browser, with WebCrypto only: the signed
// note of a checkpoint (C2SP signed-note, Ed25519), an event's leaf hash
// (RFC 8785 canonical JSON), its inclusion proof and the consistency of two
// checkpoints (RFC 9162 section 2.1). Pure functions of their arguments,
// so `console-tests/proofs.test.mjs` runs them in Node too.

const encoder = new TextEncoder();

export function base64ToBytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function bytesToBase64(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function hexToBytes(hex) {
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error('not lower-case hex');
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/// RFC 8785: keys sorted by UTF-16 code units, numbers and strings as
/// ECMAScript writes them (which is what the RFC specifies).
export function canonicalJson(value) {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('not a JSON number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const keys = Object.keys(value).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(value[k])).join(',') + '}';
}

/// The leaf hash of an envelope as `/v1/events` returns it.
export async function leafHash(envelope) {
  return sha256(concat(new Uint8Array([0]), encoder.encode(canonicalJson(envelope))));
}

async function node(left, right) {
  return sha256(concat(new Uint8Array([1]), left, right));
}

const odd = (n) => n % 2 === 1;
const half = (n) => Math.floor(n / 2);

/// RFC 9162 2.1.3.2: the root an inclusion proof leads to, or null when
/// the proof has the wrong length for its index and size.
export async function rootFromInclusion(leafIndex, treeSize, leaf, path) {
  if (leafIndex >= treeSize) return null;
  let fn = leafIndex, sn = treeSize - 1, r = leaf;
  for (const p of path) {
    if (sn === 0) return null;
    if (odd(fn) || fn === sn) {
      r = await node(p, r);
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
    } else {
      r = await node(r, p);
    }
    fn = half(fn); sn = half(sn);
  }
  return sn === 0 ? r : null;
}

/// RFC 9162 2.1.4.2: whether `path` proves that the tree of `firstSize`
/// and root `first` is a prefix of the tree of `secondSize` and root
/// `second`.
export async function verifyConsistency(firstSize, secondSize, first, second, path) {
  if (firstSize < 1 || firstSize > secondSize) return false;
  if (firstSize === secondSize) return path.length === 0 && equal(first, second);
  // A first tree of a power-of-two size is a subtree: its root starts
  // the proof.
  const proof = Number.isInteger(Math.log2(firstSize)) ? [first, ...path] : path;
  if (proof.length === 0) return false;
  let fn = firstSize - 1, sn = secondSize - 1;
  while (odd(fn)) { fn = half(fn); sn = half(sn); }
  let fr = proof[0], sr = proof[0];
  for (const c of proof.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = await node(c, fr);
      sr = await node(c, sr);
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn); }
    } else {
      sr = await node(sr, c);
    }
    fn = half(fn); sn = half(sn);
  }
  return sn === 0 && equal(fr, first) && equal(sr, second);
}

/// A C2SP verifier key `name+hexid+base64(0x01 || key)`.
export function parseVerifierKey(vkey) {
  // The key's base64 may hold '+' itself: split at the first two only.
  const m = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(vkey);
  if (!m) throw new Error('a verifier key is name+hex key id+base64 key');
  const [, name, id, key] = m;
  const raw = base64ToBytes(key);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error('not an Ed25519 verifier key');
  return { name, id: hexToBytes(id), publicKey: raw.slice(1) };
}

/// A C2SP tlog-checkpoint: its origin, size, root and signed body.
export function parseCheckpoint(note) {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new Error('a signed note has a blank line before its signatures');
  const body = note.slice(0, split + 1);
  const [origin, size, root] = body.split('\n');
  if (!/^[1-9][0-9]*$|^0$/.test(size ?? '')) throw new Error('the tree size is not a number');
  const signatures = note.slice(split + 2).split('\n').filter((l) => l.length > 0).map((line) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Error('a signature line is malformed');
    return { name: m[1], bytes: base64ToBytes(m[2]) };
  });
  return { body, origin, size: Number(size), root: base64ToBytes(root ?? ''), signatures };
}

/// Verifies the note's signature by `vkey` with WebCrypto Ed25519: the
/// parsed checkpoint when it holds, an Error saying why otherwise.
export async function verifyNote(note, vkey) {
  const key = parseVerifierKey(vkey);
  const checkpoint = parseCheckpoint(note);
  const expectedId = (await sha256(concat(encoder.encode(key.name + '\n'), new Uint8Array([1]),
    key.publicKey))).slice(0, 4);
  if (!equal(expectedId, key.id)) throw new Error('the verifier key id does not match its key');
  if (checkpoint.origin !== key.name) throw new Error(`the origin is ${checkpoint.origin}, not ${key.name}`);
  const mine = checkpoint.signatures.filter((s) => s.name === key.name && equal(s.bytes.slice(0, 4), key.id));
  if (mine.length === 0) throw new Error('no signature by the log key');
  const publicKey = await crypto.subtle.importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify']);
  for (const s of mine) {
    if (s.bytes.length === 68 && await crypto.subtle.verify({ name: 'Ed25519' }, publicKey,
      s.bytes.slice(4), encoder.encode(checkpoint.body))) {
      return checkpoint;
    }
  }
  throw new Error('the signature does not verify');
}
