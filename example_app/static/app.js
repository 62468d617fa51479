// The flask-authgate demo client: plain JavaScript, no build step.
//
// apiFetch follows the client rules of "HTTP 401 vs 403":
//   401 token_expired -> refresh once (POST /auth/refresh), retry once
//   any other 401     -> forget the tokens, show the login form
//   403               -> "Access denied", stay logged in
//   404               -> "Not found"
// and always shows the `code` and `message` of the JSON error body.
'use strict';

const STORAGE_KEY = 'authgate-demo-session';

// Tokens live in memory and in sessionStorage (gone when the tab closes).
const session = { access: null, refresh: null, user: null };
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
  session.user = null;
  sessionStorage.removeItem(STORAGE_KEY);
}

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
function refreshTokens() {
  if (!refreshing) {
    refreshing = (async () => {
      if (!session.refresh) return { ok: false, status: 401, body: { code: 'token_missing', message: 'No refresh token' } };
      const response = await fetch('/auth/refresh', {
        method: 'POST',
        headers: { Authorization: `Bearer ${session.refresh}`, Accept: 'application/json' },
      });
      const body = await readBody(response);
      if (!response.ok) return { ok: false, status: response.status, body };
      session.access = body.access_token;
      session.refresh = body.refresh_token;
      saveSession();
      return { ok: true, body };
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function apiFetch(path, options = {}) {
  const send = () => {
    const headers = new Headers(options.headers || {});
    headers.set('Accept', 'application/json');
    if (session.access) headers.set('Authorization', `Bearer ${session.access}`);
    let body;
    if (options.json !== undefined) {
      headers.set('Content-Type', 'application/json');
      body = JSON.stringify(options.json);
    }
    return fetch(path, { method: options.method || 'GET', headers, body });
  };

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
  const response = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ username: $('username').value, password: $('password').value }),
  });
  const body = await readBody(response);
  if (!response.ok) {
    showStatus('Sign-in failed', body, 'login');
    return;
  }
  session.access = body.access_token;
  session.refresh = body.refresh_token;
  session.user = body.user;
  saveSession();
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
  clearSession();
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

  loadSession();
  if (session.access) {
    showApp();
    quietly(loadNotes());
  } else {
    showLogin();
  }
});
