// The demo page's client: everything it does on the socket goes through the SDK.
import { ParleyClient } from '/demo/parley.js';

const $ = (id) => document.getElementById(id);
let client;
let session;

function show(message) {
  // The demo shows one conversation: the one with the peer named at join.
  const between = [message.from, message.to];
  if (!between.includes(session.peer_id_md5) || message.content.type !== 'text') return;
  const item = document.createElement('li');
  item.textContent = message.content.text;
  item.dataset.seq = message.seq;
  if (message.from === session.user_id_md5) item.className = 'mine';
  $('log').append(item);
  item.scrollIntoView();
  // The page is in front of the user: what it shows counts as read.
  if (document.visibilityState === 'visible' && message.from !== session.user_id_md5) {
    client.markRead(message.conversation_id, message.seq).catch(() => {});
  }
}

function status(text) {
  const unread = client ? client.conversations().reduce((n, c) => n + c.unread, 0) : 0;
  $('status').firstChild.textContent = `${text}. Unread: `;
  $('unread').textContent = String(unread);
}

async function newSession(user, peer) {
  const reply = await fetch('/demo/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, peer }),
  });
  if (!reply.ok) throw new Error(`session: ${reply.status}`);
  return reply.json();
}

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const user = $('me').value.trim();
  const peer = $('peer').value.trim();
  session = await newSession(user, peer);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client = new ParleyClient({
    url: `${scheme}://${location.host}/ws`,
    appKey: session.app_key,
    token: session.token,
    getToken: async () => (await newSession(user, peer)).token,
  });
  client.on('message', show);
  client.on('state', (state) => status(state === 'open' ? `Signed in as ${user}` : state));
  client.on('conversation', () => status(`Signed in as ${user}`));
  client.on('kicked', () => status('Signed out by the server'));
  client.on('error', (err) => status(`Error: ${err.code}`));
  await client.connect();
  $('join-form').hidden = true;
  $('chat').hidden = false;
  $('text').focus();
});

$('send-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('text').value;
  $('text').value = '';
  try {
    await client.sendText({ to: session.peer_id_md5 }, text);
  } catch (err) {
    status(`Not sent: ${err.code}`);
  }
});
