// The SDK's protocol logic against a scripted fake socket: close codes, backoff,
// heartbeat, gaps and duplicates. No server; each fake socket is one connection.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { backoffDelay, ParleyClient } from '../parley.js';

const ME = 'a'.repeat(32);
const PEER = 'b'.repeat(32);
const CONV = `p2p:${ME}:${PEER}`;

/** Answers login with login_ok and records everything the client sends. */
function fakeServer({ heartbeat = { interval_ms: 60_000, timeout_ms: 120_000 } } = {}) {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
      setTimeout(() => { this.readyState = 1; this.onopen?.(); }, 0);
    }

    send(text) {
      this.sent.push(text === 'h' ? 'h' : JSON.parse(text));
      const frame = this.sent.at(-1);
      if (frame.type === 'login') {
        this.reply({ type: 'login_ok', id: frame.id, user_id_md5: ME,
                     expires_at: '2100-01-01T00:00:00Z', heartbeat, limits: {} });
      } else if (frame.type === 'conversations') {
        this.reply({ type: 'conversations_ok', id: frame.id, conversations: [],
                     next_cursor: null });
      }
    }

    reply(frame) {
      setTimeout(() => this.onmessage?.({ data: JSON.stringify(frame) }), 0);
    }

    close(code = 1000, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      setTimeout(() => this.onclose?.({ code, reason }), 0);
    }

    serverClose(code, reason) {
      this.close(code, reason);
    }
  }
  return { FakeSocket, sockets };
}

function client(FakeSocket, options = {}) {
  return new ParleyClient({ url: 'ws://fake/ws', appKey: 'ak_x', token: 'lt_1',
                            WebSocket: FakeSocket, backoffInitialMs: 10, ...options });
}

const once = (c, event) => new Promise((r) => { const off = c.on(event, (v) => { off(); r(v); }); });
const message = (seq) => ({ msg_id: `m${seq}`, conversation_id: CONV, seq, from: PEER, to: ME,
                            content: { type: 'text', text: `t${seq}` },
                            created_at: '2026-01-01T00:00:00Z' });

test('backoff stays under a doubling cap and the maximum', () => {
  assert.equal(backoffDelay(0, 500, 30_000, () => 0.999), 499);
  assert.equal(backoffDelay(3, 500, 30_000, () => 0.5), 2000);
  assert.equal(backoffDelay(20, 500, 30_000, () => 0.999), 29_970);
});

test('draining (4010) reconnects at once and logs in again', async () => {
  const { FakeSocket, sockets } = fakeServer();
  const c = client(FakeSocket, { backoffInitialMs: 60_000 });
  await c.connect();
  const draining = once(c, 'draining');
  sockets[0].serverClose(4010, 'server_draining');
  assert.equal((await draining).code, 4010);
  await once(c, 'open');
  assert.equal(sockets.length, 2);
  c.close();
});

test('token expiry (4003) stops the client unless getToken gives a new token', async () => {
  const plain = fakeServer();
  const c = client(plain.FakeSocket);
  await c.connect();
  const expired = once(c, 'tokenExpired');
  const stopped = once(c, 'stopped');
  plain.sockets[0].serverClose(4003, 'token_expired');
  await expired;
  assert.equal((await stopped).closeCode, 4003);
  assert.equal(c.state, 'closed');

  const renewing = fakeServer();
  const r = client(renewing.FakeSocket, { getToken: async () => 'lt_2' });
  await r.connect();
  renewing.sockets[0].serverClose(4003, 'token_expired');
  await once(r, 'open');
  assert.equal(renewing.sockets[1].sent[0].token, 'lt_2');
  r.close();
});

test('kicked (4004) and replaced (4011) are final; a network drop retries', async () => {
  for (const [code, event] of [[4004, 'kicked'], [4011, 'replaced']]) {
    const { FakeSocket, sockets } = fakeServer();
    const c = client(FakeSocket);
    await c.connect();
    const named = once(c, event);
    const stopped = once(c, 'stopped');
    sockets[0].serverClose(code, event);
    await named;
    await stopped;
    assert.equal(sockets.length, 1);
  }
  const { FakeSocket, sockets } = fakeServer();
  const c = client(FakeSocket);
  await c.connect();
  sockets[0].serverClose(1006, '');
  await once(c, 'open');
  assert.equal(sockets.length, 2);
  c.close();
});

test('the heartbeat is sent when idle, and silence counts the connection dead', async () => {
  const { FakeSocket, sockets } = fakeServer({ heartbeat: { interval_ms: 20, timeout_ms: 80 } });
  const c = client(FakeSocket);
  await c.connect();
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(sockets[0].sent.includes('h'));
  // The fake never answers `h`, so the client gives up on it and connects again.
  await once(c, 'open');
  assert.equal(sockets[0].readyState, 3);
  c.close();
});

test('a gap is filled by sync before later messages; duplicates are dropped', async () => {
  const { FakeSocket, sockets } = fakeServer();
  const c = client(FakeSocket);
  const got = [];
  c.on('message', (m) => got.push(m.seq));
  await c.connect();
  const socket = sockets[0];
  socket.reply({ type: 'message', message: message(1) });
  socket.reply({ type: 'message', message: message(1) });
  socket.reply({ type: 'message', message: message(4) });
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, [1]);

  const sync = socket.sent.find((f) => f.type === 'sync');
  assert.equal(sync.after_seq, 1);
  socket.reply({ type: 'sync_ok', id: sync.id, conversation_id: CONV,
                 messages: [message(2), message(3), message(4)], has_more: false,
                 last_seq: 4 });
  socket.reply({ type: 'message', message: message(3) });
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, [1, 2, 3, 4]);
  assert.equal(c.conversations()[0].unread, 4);
  c.close();
});

test('an unanswered send is repeated with the same client message ID after a reconnect',
  async () => {
    const { FakeSocket, sockets } = fakeServer();
    const c = client(FakeSocket);
    await c.connect();
    const sent = c.sendText({ to: PEER }, 'hello');
    await new Promise((r) => setTimeout(r, 5));
    const first = sockets[0].sent.find((f) => f.type === 'send');
    sockets[0].serverClose(1006, '');
    await once(c, 'open');
    await new Promise((r) => setTimeout(r, 5));
    const again = sockets[1].sent.find((f) => f.type === 'send');
    assert.equal(again.client_msg_id, first.client_msg_id);
    sockets[1].reply({ type: 'send_ok', id: again.id, msg_id: 'm1', conversation_id: CONV,
                       seq: 1, created_at: '2026-01-01T00:00:00Z', duplicate: true });
    assert.equal((await sent).duplicate, true);
    assert.deepEqual(c.outbox(), []);
    c.close();
  });
