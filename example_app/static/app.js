// The flask-authgate demo client: plain JavaScript, no build step.
//
// apiFetch follows the client rules of "HTTP 401 vs 403":
//   401 token_expired                    -> refresh once (POST /auth/refresh), retry once
//   401 insufficient_user_authentication -> ask for the password and the code (step-up), retry once
//   any other 401                        -> forget the tokens, show the login form
//   403                                  -> "Access denied", stay logged in
//   404                                  -> "Not found"
// and always shows the `code` and `message` of the JSON error body.
//
// DPoP (RFC 9449): at sign-in the page makes an ECDSA P-256 key pair whose private key
// cannot be exported (WebCrypto, extractable = false), and signs a fresh proof with it for
// every request, so the tokens it holds are worthless to anyone without that key.
'use strict';

const STORAGE_KEY = 'authgate-demo-session';

// Tokens live in memory and in sessionStorage (gone when the tab closes).
// tokenType is what the server answered: "DPoP" (bound to our key) or "Bearer".
const session = { access: null, refresh: null, tokenType: null, user: null };
let refreshing = null; // the one refresh in flight, shared by concurrent requests

function loadSession() {
  try {
    Object.assign(session, JSON.parse(sessionStorage.getItem(STORAGE_KEY)) || {});
  } catch (e) {
    sessionStorage.removeItem(STORAGE_KEY);
  }
}

function saveSession() {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

function clearSession() {
  session.access = null;
  session.refresh = null;
  session.tokenType = null;
  session.user = null;
  sessionStorage.removeItem(STORAGE_KEY);
  dpopKey = null;
  forgetKey().catch(() => {});
}

// ---- DPoP proofs -------------------------------------------------------------

// { privateKey: CryptoKey (non-extractable), jwk: the public key, jkt: its RFC 7638 thumbprint }
let dpopKey = null;
const KEY_DB = 'authgate-demo-keys';

function dpopSupported() {
  // WebCrypto needs a secure context (https, or http on localhost / 127.0.0.1).
  return Boolean(window.isSecureContext && window.crypto && crypto.subtle && window.indexedDB);
}

function b64url(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function b64urlJson(value) {
  return b64url(new TextEncoder().encode(JSON.stringify(value)));
}

async function sha256(text) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

// The key pair is kept in IndexedDB, which stores a CryptoKey as it is (still non-extractable),
// so a reload keeps the session; the private key itself is never readable by any script.
function keyStore(mode, action) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(KEY_DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('keys');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('keys', mode);
      const request = action(tx.objectStore('keys'));
      tx.oncomplete = () => {
        db.close();
        resolve(request.result);
      };
      tx.onerror = () => {
        db.close();
        reject(tx.error);
      };
    };
  });
}

const loadKey = () => keyStore('readonly', (store) => store.get('dpop'));
const saveKey = (key) => keyStore('readwrite', (store) => store.put(key, 'dpop'));
const forgetKey = () => (dpopSupported() ? keyStore('readwrite', (store) => store.delete('dpop')) : Promise.resolve());

async function newKey() {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey); // the public half only
  const jwk = { crv, kty, x, y };
  // RFC 7638: the required members in lexicographic order, no whitespace.
  const jkt = b64url(await sha256(JSON.stringify({ crv, kty, x, y })));
  return { privateKey: pair.privateKey, jwk, jkt };
}

function randomId() {
  return b64url(crypto.getRandomValues(new Uint8Array(16))); // RFC 9449 §4.2: at least 96 random bits
}

// One proof for one request (RFC 9449 §4.2): a JWT signed with our key, naming the method,
// the URL without query and fragment, the time, and (with an access token) the token's hash.
async function dpopProof(method, url, accessToken) {
  const key = dpopKey; // the key of this request, even if a sign-out clears dpopKey meanwhile
  const htu = new URL(url, window.location.href);
  htu.search = '';
  htu.hash = '';
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk };
  const claims = { jti: randomId(), htm: method, htu: htu.href, iat: Math.floor(Date.now() / 1000) };
  if (accessToken) claims.ath = b64url(await sha256(accessToken));
  const input = `${b64urlJson(header)}.${b64urlJson(claims)}`;
  // WebCrypto's ECDSA signature is r || s, exactly the JWS ES256 form (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key.privateKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

// fetch with our credentials. `access`: the access token goes along, as
// `Authorization: DPoP <token>` in a bound session, `Authorization: Bearer <token>` otherwise;
// `refresh`: the refresh token, as Bearer; `none`: no token (the login). Whenever we hold a key
// and the session is not a bearer one, a fresh `DPoP` proof goes along too: at the login so that
// the server binds the new tokens to our key, at the refresh because the refresh token is bound.
async function signedFetch(path, { method = 'GET', json, send = 'access' } = {}) {
  const headers = new Headers({ Accept: 'application/json' });
  let body;
  if (json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(json);
  }
  const bound = session.tokenType === 'DPoP';
  const token = send === 'access' ? session.access : send === 'refresh' ? session.refresh : null;
  if (token) headers.set('Authorization', `${send === 'access' && bound ? 'DPoP' : 'Bearer'} ${token}`);
  if (dpopKey !== null && (send === 'none' || bound)) {
    // An access token is hashed into the proof (ath); a refresh token is not (RFC 9449 §5).
    headers.set('DPoP', await dpopProof(method, path, send === 'access' ? token : null));
  }
  return fetch(path, { method, headers, body });
}

// ---- apiFetch ----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
    this.body = body;
  }
}

async function readBody(response) {
  if (response.status === 204) return {};
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      return await response.json();
    } catch (e) {
      // fall through
    }
  }
  return { code: 'unexpected_response', message: `The server answered HTTP ${response.status}` };
}

// Use the refresh token once; concurrent callers wait for the same refresh, because a
// refresh token is single-use: sending it twice looks like theft and ends the session.
// In a DPoP session the refresh carries a proof of our key too: the refresh token is bound to it.
function refreshTokens() {
  if (!refreshing) {
    refreshing = (async () => {
      if (!session.refresh) return { ok: false, status: 401, body: { code: 'token_missing', message: 'No refresh token' } };
      const response = await signedFetch('/auth/refresh', { method: 'POST', send: 'refresh' });
      const body = await readBody(response);
      if (!response.ok) return { ok: false, status: response.status, body };
      session.access = body.access_token;
      session.refresh = body.refresh_token;
      session.tokenType = body.token_type;
      saveSession();
      return { ok: true, body };
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function apiFetch(path, options = {}) {
  const send = () => signedFetch(path, { method: options.method || 'GET', json: options.json });

  const sentToken = session.access;
  let response = await send();
  let body = await readBody(response);

  if (response.status === 401 && body.code === 'token_expired') {
    // Another request may have refreshed already: then just retry with the new token.
    const refreshed = session.access !== sentToken ? { ok: true } : await refreshTokens();
    if (refreshed.ok) {
      response = await send(); // retried once only
      body = await readBody(response);
    } else if (refreshed.status !== 401) {
      // The refresh could not be checked (503: the auth backend is down): keep the session.
      showStatus('Error', refreshed.body, 'error');
      throw new ApiError(refreshed.status, refreshed.body);
    } else {
      body = refreshed.body; // the refresh token is expired, revoked or reused: log in again
    }
  }
  if (response.status === 401 && body.code === 'insufficient_user_authentication') {
    // RFC 9470: the session is fine, but this action needs a stronger or more recent login.
    if (await stepUp(body)) {
      response = await send(); // retried once only
      body = await readBody(response);
    }
    if (response.status === 401 && body.code === 'insufficient_user_authentication') {
      showStatus('Confirmation needed', body, 'denied'); // cancelled: still signed in
      throw new ApiError(401, body);
    }
  }
  if (response.status === 401) {
    // Not (or no longer) authenticated: forget the tokens and ask for a login.
    clearSession();
    showLogin('Please sign in', body);
    throw new ApiError(401, body);
  }
  if (response.status === 403) {
    // Authenticated but not allowed: another login will not help, so stay logged in.
    showStatus('Access denied', body, 'denied');
    throw new ApiError(403, body);
  }
  if (response.status === 404) {
    showStatus('Not found', body, 'missing');
    throw new ApiError(404, body);
  }
  if (!response.ok) {
    showStatus('Error', body, 'error');
    throw new ApiError(response.status, body);
  }
  return body;
}

// ---- step-up (RFC 9470) --------------------------------------------------------

let pendingStepUp = null; // { resolve } of the prompt on screen

// Show the step-up form; resolves true once POST /auth/step-up gave us a stronger token,
// false when the user cancels. Concurrent callers share the one prompt.
function stepUp(challenge) {
  if (pendingStepUp) return pendingStepUp.promise;
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  pendingStepUp = { resolve, promise };
  $('step-up-reason').textContent = challenge.message || '';
  $('step-up-error').hidden = true;
  $('step-up-form').reset();
  $('step-up-view').hidden = false;
  $('step-up-password').focus();
  return promise;
}

function endStepUp(result) {
  $('step-up-view').hidden = true;
  $('step-up-form').reset();
  const pending = pendingStepUp;
  pendingStepUp = null;
  if (pending) pending.resolve(result);
}

async function submitStepUp(event) {
  event.preventDefault();
  const response = await signedFetch('/auth/step-up', {
    method: 'POST',
    json: { password: $('step-up-password').value, code: $('step-up-code').value },
  });
  const body = await readBody(response);
  if (response.ok) {
    session.access = body.access_token;
    session.tokenType = body.token_type;
    saveSession();
    endStepUp(true);
  } else if (response.status === 401 && body.code === 'step_up_failed') {
    $('step-up-error').textContent = body.message; // try again, or cancel
    $('step-up-error').hidden = false;
    $('step-up-password').value = '';
    $('step-up-code').value = '';
    $('step-up-password').focus();
  } else {
    endStepUp(false);
    showStatus('Error', body, 'error');
  }
}

// ---- the page -------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function showStatus(title, body, kind) {
  const box = $('status');
  box.className = kind;
  $('status-title').textContent = title;
  $('status-code').textContent = (body && body.code) || '';
  $('status-message').textContent = (body && body.message) || '';
  box.hidden = false;
}

function clearStatus() {
  $('status').hidden = true;
}

function showLogin(title, body) {
  $('session').hidden = true;
  $('binding').hidden = true;
  if (pendingStepUp) endStepUp(false);
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  if (title) showStatus(title, body, 'login');
  $('username').focus();
}

function showView(name) {
  for (const view of ['notes', 'admin', 'reports']) {
    $(`${view}-view`).hidden = view !== name;
    $(`nav-${view}`).classList.toggle('active', view === name);
  }
}

function showApp() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('session').hidden = false;
  $('who').textContent = session.user ? session.user.username : '';
  $('roles').textContent = session.user ? `(${session.user.roles.join(', ')})` : '';
  const binding = $('binding');
  if (session.tokenType === 'DPoP' && dpopKey) {
    binding.textContent = `Tokens bound to this browser's key (DPoP, ES256, thumbprint ${dpopKey.jkt})`;
  } else {
    binding.textContent = 'Bearer tokens (no DPoP key in this browser)';
  }
  binding.hidden = false;
}

// Ignore the ApiError: apiFetch has already shown what happened.
function quietly(promise) {
  return promise.catch((err) => {
    if (!(err instanceof ApiError)) {
      showStatus('Error', { code: 'network_error', message: String(err.message || err) }, 'error');
    }
  });
}

async function loadNotes() {
  const body = await apiFetch('/api/notes');
  clearStatus();
  showView('notes');
  const list = $('notes-list');
  list.replaceChildren();
  for (const note of body.notes) {
    const item = document.createElement('li');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'link';
    open.textContent = `#${note.id} ${note.title}`;
    open.addEventListener('click', () => quietly(openNote(note.id)));
    item.append(open);
    list.append(item);
  }
  $('notes-empty').hidden = body.notes.length > 0;
}

async function openNote(id) {
  $('note-detail').hidden = true;
  const note = await apiFetch(`/api/notes/${encodeURIComponent(id)}`);
  clearStatus();
  $('note-title').textContent = `#${note.id} ${note.title}`;
  $('note-body').textContent = note.body;
  $('note-detail').hidden = false;
}

async function deleteNote(id) {
  await apiFetch(`/api/notes/${encodeURIComponent(id)}`, { method: 'DELETE' });
  await loadNotes();
  showStatus('Deleted', { code: '', message: `Note #${id} was deleted` }, 'info');
}

async function deleteAllNotes() {
  // DELETE /api/notes is @step_up_required("mfa", max_age=300): apiFetch handles the step-up.
  const body = await apiFetch('/api/notes', { method: 'DELETE' });
  await loadNotes();
  showStatus('Deleted', { code: '', message: `${body.deleted} notes were deleted` }, 'info');
}

async function loadAdmin() {
  const body = await apiFetch('/api/admin/users');
  clearStatus();
  showView('admin');
  const rows = $('users-body');
  rows.replaceChildren();
  for (const user of body.users) {
    const tr = document.createElement('tr');
    for (const value of [user.id, user.username, user.roles.join(', '), String(user.notes)]) {
      const td = document.createElement('td');
      td.textContent = value;
      tr.append(td);
    }
    rows.append(tr);
  }
}

async function loadReports() {
  const body = await apiFetch('/api/reports');
  clearStatus();
  showView('reports');
  $('report').textContent = `${body.report.users} users, ${body.report.notes} notes`;
}

async function login(event) {
  event.preventDefault();
  // A new key pair for every sign-in: the tokens of this session will be bound to it.
  dpopKey = dpopSupported() ? await newKey() : null;
  const response = await signedFetch('/auth/login', {
    method: 'POST',
    json: { username: $('username').value, password: $('password').value },
    send: 'none',
  });
  const body = await readBody(response);
  if (!response.ok) {
    showStatus('Sign-in failed', body, 'login');
    return;
  }
  session.access = body.access_token;
  session.refresh = body.refresh_token;
  session.tokenType = body.token_type;
  session.user = body.user;
  saveSession();
  if (body.token_type === 'DPoP') {
    await saveKey(dpopKey);
  } else {
    dpopKey = null; // the server does not speak DPoP: a bearer session
  }
  $('password').value = '';
  showApp();
  await quietly(loadNotes());
}

async function logout() {
  try {
    await apiFetch('/auth/logout', { method: 'POST', json: { refresh_token: session.refresh } });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
  }
  clearSession(); // forgets the key too
  showLogin('Signed out', { code: '', message: 'You have been signed out' });
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (e) => quietly(login(e)));
  $('logout').addEventListener('click', () => quietly(logout()));
  $('nav-notes').addEventListener('click', () => quietly(loadNotes()));
  $('nav-admin').addEventListener('click', () => quietly(loadAdmin()));
  $('nav-reports').addEventListener('click', () => quietly(loadReports()));
  $('note-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const json = { title: $('note-title-input').value, body: $('note-body-input').value };
    quietly(
      apiFetch('/api/notes', { method: 'POST', json }).then(() => {
        $('note-form').reset();
        return loadNotes();
      }),
    );
  });
  $('open-form').addEventListener('submit', (e) => {
    e.preventDefault();
    quietly(openNote($('note-id').value));
  });
  $('delete-note').addEventListener('click', () => quietly(deleteNote($('note-id').value)));
  $('delete-all').addEventListener('click', () => quietly(deleteAllNotes()));
  $('step-up-form').addEventListener('submit', (e) => quietly(submitStepUp(e)));
  $('step-up-cancel').addEventListener('click', () => endStepUp(false));

  quietly(resume());
});

// After a reload: the tokens from sessionStorage, the key from IndexedDB.
async function resume() {
  loadSession();
  if (session.access && session.tokenType === 'DPoP') {
    dpopKey = dpopSupported() ? (await loadKey()) || null : null;
    if (!dpopKey) {
      clearSession(); // bound tokens without their key are worthless
      showLogin('Please sign in', { code: '', message: 'The key of this session is gone' });
      return;
    }
  }
  if (session.access) {
    showApp();
    await loadNotes();
  } else {
    showLogin();
  }
}
