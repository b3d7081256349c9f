// The SDK against a real Parley on loopback: delivery, errors, reconnects, kicks.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import WebSocket from 'ws';

import { ParleyClient } from '../parley.js';
import { startServer } from '../test-support/server.js';

let server;
let app;

before(async () => {
  // One device per platform, so a reconnect also meets the server's own replacement rule.
  server = await startServer({ DEVICE_POLICY: 'one_per_platform' });
  app = await server.createApp();
});

after(async () => {
  await server?.stop();
});

async function client(user, options = {}) {
  const c = new ParleyClient({
    url: server.wsUrl, appKey: app.key, token: await app.token(user), WebSocket,
    backoffInitialMs: 50, backoffMaxMs: 200, ...options,
  });
  c.received = [];
  c.on('message', (m) => c.received.push(m));
  return c;
}

function until(check, what, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      if (check()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error(`timed out: ${what}`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

const texts = (messages) => messages.map((m) => m.content.text);

test('two clients chat both ways, in order, with unread counts and read markers', async () => {
  const [alice, bob] = await app.users('alice-1', 'bob-1');
  const a = await client(alice);
  const b = await client(bob);
  await Promise.all([a.connect(), b.connect()]);

  const sent = await a.sendText({ to: bob }, 'hi bob');
  await b.sendText({ to: alice }, 'hi alice');
  // A client's own sends are delivered to its callbacks too, in seq order.
  await until(() => b.received.length === 2 && a.received.length === 2, 'both messages');

  assert.equal(sent.seq, 1);
  assert.deepEqual(texts(a.received), ['hi bob', 'hi alice']);
  assert.deepEqual(texts(b.received), ['hi bob', 'hi alice']);
  const [entry] = a.conversations();
  assert.equal(entry.conversation_id, sent.conversation_id);
  assert.equal(entry.unread, 1);
  assert.equal(await a.markRead(sent.conversation_id), 2);
  assert.equal(a.conversations()[0].unread, 0);
  a.close();
  b.close();
});

test('a refused send rejects with the server code and leaves the outbox', async () => {
  const [carol] = await app.users('carol-1');
  const c = await client(carol);
  await c.connect();
  await assert.rejects(c.sendText({ to: 'f'.repeat(32) }, 'anyone?'),
                       (err) => err.code === 'user_not_found');
  assert.deepEqual(c.outbox(), []);
  c.close();
});

test('a burst survives both ends reconnecting in the middle: nothing lost or doubled', async () => {
  const [dave, erin] = await app.users('dave-1', 'erin-1');
  const d = await client(dave);
  const e = await client(erin);
  await Promise.all([d.connect(), e.connect()]);
  let reconnects = 0;
  d.on('open', () => { reconnects += 1; });
  e.on('open', () => { reconnects += 1; });

  const sends = [];
  for (let i = 1; i <= 60; i += 1) {
    sends.push(d.sendText({ to: erin }, `m${i}`));
    // Cut each end's connection without a close frame, as a network failure would.
    if (i === 15) e._socket.terminate();
    if (i === 30) d._socket.terminate();
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  const stored = await Promise.all(sends);
  await until(() => e.received.length >= 60, 'all 60 at the receiver');

  const want = Array.from({ length: 60 }, (_, i) => `m${i + 1}`);
  assert.equal(new Set(stored.map((m) => m.seq)).size, 60);
  assert.deepEqual(texts(e.received), want);
  const seqs = e.received.map((m) => m.seq);
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
  assert.ok(reconnects >= 2);
  const range = 'from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&limit=500';
  const log = await app.call('GET',
    `/v1/conversations/${encodeURIComponent(stored[0].conversation_id)}/messages?${range}`);
  assert.deepEqual(log.messages.map((m) => m.content.text).sort(), [...want].sort());
  d.close();
  e.close();
});

test('messages sent while a client is away arrive by sync after it connects', async () => {
  const [frank, gina] = await app.users('frank-1', 'gina-1');
  const f = await client(frank);
  await f.connect();
  const first = await f.sendText({ to: gina }, 'one');
  await f.sendText({ to: gina }, 'two');

  const g = await client(gina, { cursors: { [first.conversation_id]: 1 } });
  await g.connect();
  await until(() => g.received.length === 1, 'the message after the cursor');
  assert.deepEqual(texts(g.received), ['two']);
  assert.equal(g.cursors()[first.conversation_id], 2);
  f.close();
  g.close();
});

test('a kick is reported with its reason and the client stays closed', async () => {
  const [hank] = await app.users('hank-1');
  const h = await client(hank);
  await h.connect();
  const kicked = new Promise((r) => h.on('kicked', r));
  await app.call('POST', `/v1/users/${hank}/kick`, { reason: 'new phone' });
  const event = await kicked;
  assert.equal(event.code, 4004);
  assert.equal(event.kickReason, 'new phone');
  await until(() => h.state === 'closed', 'closed state');
});

test('a newer login on the same platform replaces the older one', async () => {
  const [ida] = await app.users('ida-1');
  const old = await client(ida);
  await old.connect();
  const replaced = new Promise((r) => old.on('replaced', r));
  const fresh = await client(ida);
  await fresh.connect();
  assert.equal((await replaced).code, 4011);
  await until(() => old.state === 'closed', 'old client closed');
  assert.equal(fresh.state, 'open');
  fresh.close();
});

test('an expired session comes back with a token from getToken', async () => {
  const [jack] = await app.users('jack-1');
  const j = await client(jack, { token: await app.token(jack, 1),
                                 getToken: () => app.token(jack) });
  await j.connect();
  const expired = new Promise((r) => j.on('tokenExpired', r));
  const reopened = new Promise((r) => j.on('open', r));
  assert.equal((await expired).code, 4003);
  await reopened;
  assert.equal(j.state, 'open');
  j.close();
});
