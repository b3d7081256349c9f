// The demo page's client. Everything it does on the socket goes through the SDK; the
// demo-only routes stand in for an App Server: they import users and mint tokens.
import { ParleyClient } from '/demo/parley.js';

const $ = (id) => document.getElementById(id);
// A tab keeps its session across reloads and forgets it when closed, like a phone app
// that stays signed in until it is swiped away. Tokens live an hour at most.
const SAVED = 'parley-demo-session';

let client = null;
let session = null; // {user, app_key, token, user_id_md5}
let open = null; // the conversation on screen: {id, target, title}
const names = new Map(); // user MD5 ID -> name
const groups = new Map(); // group ID -> name
const asked = new Set(); // MD5 IDs and group IDs whose name was asked for
const history = new Map(); // conversation ID -> messages in seq order

// --- the demo routes ---------------------------------------------------------------------

async function demoRoute(method, path, body) {
  const reply = await fetch(path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!reply.ok) throw new Error(`${path}: ${reply.status}`);
  return reply.json();
}

async function importNames(list) {
  const { users } = await demoRoute('POST', '/demo/users', { names: list });
  for (const u of users) names.set(u.user_id_md5, u.name);
  return users.map((u) => u.user_id_md5);
}

async function learnNames(ids) {
  const wanted = [...new Set(ids)].filter((id) => id && !names.has(id) && !asked.has(id));
  if (wanted.length === 0) return;
  wanted.forEach((id) => asked.add(id));
  const query = wanted.slice(0, 20).map((id) => `ids=${encodeURIComponent(id)}`).join('&');
  const { users } = await demoRoute('GET', `/demo/users?${query}`);
  for (const u of users) names.set(u.user_id_md5, u.name);
  render();
  if (open) renderLog();
}

async function learnGroup(groupId) {
  if (groups.has(groupId) || asked.has(`grp:${groupId}`)) return;
  asked.add(`grp:${groupId}`);
  const reply = await client.request({ type: 'group_get', group_id: groupId });
  groups.set(groupId, reply.group.name);
  render();
  if (open?.id === `grp:${groupId}`) $('chat-title').textContent = reply.group.name;
}

// --- what the screen shows ---------------------------------------------------------------

const nameOf = (id) => (id === session.user_id_md5 ? 'you' : names.get(id) ?? id.slice(0, 8));
const p2pId = (a, b) => `p2p:${[a, b].sort().join(':')}`;

function titleOf(entry) {
  if (entry.kind === 'group') {
    const groupId = entry.conversation_id.slice('grp:'.length);
    return groups.get(groupId) ?? groupId;
  }
  if (entry.kind === 'system') return 'Notices';
  return entry.peer === session.user_id_md5 ? 'Notes to self' : nameOf(entry.peer);
}

function targetOf(entry) {
  if (entry.kind === 'group') return { groupId: entry.conversation_id.slice('grp:'.length) };
  if (entry.kind === 'p2p') return { to: entry.peer };
  return null; // a client cannot send into the notices of sys:
}

function describe(message) {
  const content = message.content;
  if (content.type === 'text') return content.text;
  if (content.type === 'recalled') return '(recalled)';
  if (content.type === 'system') return `(${String(content.event).replaceAll('_', ' ')})`;
  return content.text ?? `(${content.custom_type ?? content.type})`;
}

function status(text) {
  $('status').textContent = session ? `Signed in as ${session.user}. ${text}` : text;
}

let renderQueued = false;
function render() {
  // Pushes come in bursts during a catch-up: draw once per burst.
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    renderList();
  });
}

function renderList() {
  if (!client) return;
  const entries = client.conversations();
  learnNames(entries.map((e) => e.peer)).catch(() => {});
  for (const e of entries.filter((x) => x.kind === 'group')) {
    learnGroup(e.conversation_id.slice('grp:'.length)).catch(() => {});
  }
  const items = entries.map((entry) => {
    const item = document.createElement('li');
    item.dataset.conversationId = entry.conversation_id;
    const text = document.createElement('div');
    text.className = 'entry';
    const title = document.createElement('div');
    title.className = 'title';
    title.textContent = titleOf(entry);
    const last = document.createElement('div');
    last.className = 'last';
    const message = entry.last_message;
    if (message) {
      const who = entry.kind === 'group' && message.from ? `${nameOf(message.from)}: ` : '';
      last.textContent = who + describe(message);
    }
    text.append(title, last);
    item.append(text);
    if (entry.unread > 0 && entry.conversation_id !== open?.id) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = String(entry.unread);
      item.append(badge);
    }
    item.addEventListener('click', () => {
      openChat(entry.conversation_id, targetOf(entry), titleOf(entry));
    });
    return item;
  });
  $('conversations').replaceChildren(...items);
  $('empty').hidden = items.length > 0;
}

function logItem(message) {
  const item = document.createElement('li');
  item.dataset.seq = String(message.seq);
  if (message.content.type === 'system') {
    item.className = 'system';
  } else if (message.from === session.user_id_md5) {
    item.className = 'mine';
  } else if (open.id.startsWith('grp:') && message.from) {
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = nameOf(message.from);
    item.append(from);
  }
  item.append(describe(message));
  return item;
}

function renderLog() {
  const messages = history.get(open.id) ?? [];
  learnNames(messages.map((m) => m.from)).catch(() => {});
  $('log').replaceChildren(...messages.map(logItem));
  $('log').lastElementChild?.scrollIntoView();
}

function show(view) {
  $('signin').hidden = view !== 'signin';
  $('home').hidden = view !== 'home';
  $('chat').hidden = view !== 'chat';
}

// --- reading and opening conversations ---------------------------------------------------

function markOpenRead() {
  if (!open || document.visibilityState === 'hidden') return;
  const entry = client.conversations().find((e) => e.conversation_id === open.id);
  if (!entry || entry.last_seq <= entry.read_seq) return;
  client.markRead(open.id, entry.last_seq).catch((err) => status(`Not marked read: ${err.code}`));
}

function openChat(id, target, title) {
  open = { id, target, title };
  $('chat-title').textContent = title;
  $('send-form').hidden = target === null;
  show('chat');
  renderLog();
  markOpenRead();
  $('text').focus();
}

function closeChat() {
  open = null;
  show('home');
  render();
}

function received(message) {
  const list = history.get(message.conversation_id) ?? [];
  list.push(message);
  history.set(message.conversation_id, list);
  if (open?.id === message.conversation_id) {
    $('log').append(logItem(message));
    $('log').lastElementChild.scrollIntoView();
    // The chat is in front of the user: what it shows counts as read.
    if (message.from !== session.user_id_md5) markOpenRead();
  }
  render();
}

function recalled({ conversationId, msgId }) {
  const message = (history.get(conversationId) ?? []).find((m) => m.msg_id === msgId);
  if (!message) return;
  message.content = { type: 'recalled' };
  if (open?.id === conversationId) renderLog();
}

// --- signing in --------------------------------------------------------------------------

async function newSession(user) {
  const reply = await demoRoute('POST', '/demo/session', { user });
  const fresh = { user, ...reply };
  sessionStorage.setItem(SAVED, JSON.stringify(fresh));
  return fresh;
}

async function start(saved) {
  session = saved;
  names.set(session.user_id_md5, session.user);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client = new ParleyClient({
    url: `${scheme}://${location.host}/ws`,
    appKey: session.app_key,
    token: session.token,
    getToken: async () => {
      session = await newSession(session.user);
      return session.token;
    },
  });
  client.on('message', received);
  client.on('recall', recalled);
  client.on('conversation', render);
  client.on('conversations', render);
  client.on('state', (state) => status(state === 'open' ? 'Online.' : `${state}...`));
  client.on('kicked', () => status('Signed out by the server.'));
  client.on('error', (err) => status(`Error: ${err.code}.`));
  await client.connect();
  show('home');
  render();
}

function signOut() {
  client?.close();
  sessionStorage.removeItem(SAVED);
  location.reload();
}

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    await start(await newSession($('me').value.trim()));
  } catch (err) {
    status(`Could not sign in: ${err.code ?? err.message}`);
  }
});

$('peer-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('peer').value.trim();
  try {
    const [peer] = await importNames([name]);
    $('peer').value = '';
    openChat(p2pId(session.user_id_md5, peer), { to: peer }, name);
  } catch (err) {
    status(`Could not start the chat: ${err.code ?? err.message}`);
  }
});

$('group-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('group-name').value.trim();
  const members = $('group-members').value.split(',').map((n) => n.trim()).filter(Boolean);
  try {
    const ids = await importNames(members);
    const reply = await client.request({
      type: 'group_create', name, join_policy: 'invite',
      members: ids.filter((id) => id !== session.user_id_md5),
    });
    groups.set(reply.group.group_id, reply.group.name);
    $('group-name').value = '';
    $('group-members').value = '';
    $('new-group').open = false;
    openChat(reply.group.conversation_id, { groupId: reply.group.group_id }, name);
  } catch (err) {
    status(`Could not create the group: ${err.code ?? err.message}`);
  }
});

$('send-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('text').value;
  $('text').value = '';
  try {
    await client.sendText(open.target, text);
  } catch (err) {
    status(`Not sent: ${err.code}`);
  }
});

$('back').addEventListener('click', closeChat);
$('sign-out').addEventListener('click', signOut);
document.addEventListener('visibilitychange', markOpenRead);

// A reload finds the session of this tab and signs straight back in; the SDK syncs every
// conversation from its start, so the history comes back from the server.
const saved = JSON.parse(sessionStorage.getItem(SAVED) ?? 'null');
if (saved) {
  start(saved).catch(() => {
    sessionStorage.removeItem(SAVED);
    session = null;
    client = null;
    show('signin');
    status('The saved session has ended: sign in again.');
  });
}
