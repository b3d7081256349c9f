// Parley's client SDK: one module, no build step, no dependencies.
//
// It does the parts of docs/protocol.md a client must get right ("Delivery guarantees"):
// login, the heartbeat, reconnect with backoff and jitter, sync from the last contiguous
// seq of every conversation after each (re)connect, resend of unanswered sends with the
// same client message ID, de-duplication by msg_id, and delivery to callbacks in seq order.
//
// Runs in browsers and in Node.js 20+. Node 20 has no global WebSocket: pass one in the
// `WebSocket` option (the `ws` package's class works).

/** Close codes the server uses, and what the client does about each. */
export const CloseCode = Object.freeze({
  GOING_AWAY: 1001,
  TOO_BIG: 1009,
  BAD_FRAME: 4000,
  LOGIN_REQUIRED: 4001,
  LOGIN_FAILED: 4002,
  TOKEN_EXPIRED: 4003,
  KICKED: 4004,
  HEARTBEAT_TIMEOUT: 4005,
  USER_DELETED: 4006,
  SLOW_CONSUMER: 4008,
  DRAINING: 4010,
  REPLACED: 4011,
  TOO_MANY_FRAMES: 4012,
});

// Codes after which reconnecting cannot help: the same frames or credentials would be
// refused again. The client stops and says why.
const FINAL_CODES = new Set([1009, 4000, 4002, 4004, 4006, 4011]);
// Codes the protocol says to reconnect after at once, without backoff.
const AT_ONCE_CODES = new Set([4005, 4010]);
// Server error codes after which a send may have been stored or may succeed later:
// the send stays in the outbox and is repeated with the same client message ID.
const RETRY_SEND_CODES = new Set([
  'internal_error', 'database_unavailable', 'database_busy', 'hook_unavailable',
]);
const WAIT_SEND_CODES = new Set(['rate_limited', 'spam_blocked']);
const COUNTED_CONTENT = new Set(['text', 'custom']);

const DEFAULTS = {
  platform: 'web',
  // First retry after up to half a second, doubling to at most 30 s: quick after a blip,
  // gentle on a server that is down. Each delay is drawn uniformly below the cap
  // ("full jitter") so clients that dropped together do not come back together.
  backoffInitialMs: 500,
  backoffMaxMs: 30_000,
  // docs/protocol.md: wait at least 10 s for send_ok before counting a send as lost.
  sendTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  syncPageSize: 100,
};

/** An error with the server's stable `code` (or one of the SDK's own, see parley.d.ts). */
export class ParleyError extends Error {
  constructor(code, message, data = undefined, closeCode = undefined) {
    super(message || code);
    this.name = 'ParleyError';
    this.code = code;
    this.data = data;
    this.closeCode = closeCode;
  }

  static fromFrame(frame, closeCode) {
    return new ParleyError(frame.code, frame.message, frame.data, closeCode);
  }
}

/** Delay before reconnect attempt `attempt` (0-based): full jitter under a doubling cap. */
export function backoffDelay(attempt, initialMs, maxMs, random = Math.random) {
  const cap = Math.min(maxMs, initialMs * 2 ** attempt);
  return Math.floor(random() * cap);
}

/**
 * What the client knows of one conversation: the last contiguous seq, messages held back
 * until the gap before them is filled, and the list entry with its unread count.
 */
class ConversationState {
  constructor(id, lastContiguous = 0) {
    this.id = id;
    this.lastContiguous = lastContiguous;
    this.pending = new Map(); // seq -> message, above lastContiguous + 1
    this.recentIds = new Set(); // msg_ids delivered lately, for de-duplication
    this.summary = null;
    this.syncing = false;
    this.syncAgain = false;
  }

  remember(msgId) {
    this.recentIds.add(msgId);
    // Only overlap between pushes and sync pages needs the IDs; seqs cover the rest.
    if (this.recentIds.size > 1000) {
      this.recentIds.delete(this.recentIds.values().next().value);
    }
  }
}

/** A tiny event emitter that works the same in browsers and Node. */
class Emitter {
  constructor() {
    this._handlers = new Map();
  }

  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this._handlers.get(event)?.delete(handler);
  }

  emit(event, payload) {
    for (const handler of this._handlers.get(event) ?? []) {
      try {
        handler(payload);
      } catch (err) {
        // A failing callback must not break delivery to the others or the connection.
        if (event !== 'callbackError') this.emit('callbackError', err);
      }
    }
  }
}

export class ParleyClient extends Emitter {
  /** See parley.d.ts for every option. */
  constructor(options) {
    super();
    if (!options?.url || !options.appKey || !options.token) {
      throw new TypeError('url, appKey and token are required');
    }
    this.options = { ...DEFAULTS, ...options };
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (!this._WebSocket) {
      throw new TypeError('no WebSocket: pass the WebSocket option (e.g. the ws package)');
    }
    this._random = options.random ?? Math.random;
    this._token = options.token;
    this._state = 'idle';
    this._socket = null;
    this._attempt = 0;
    this._timers = new Set();
    this._requests = new Map(); // request id -> {resolve, reject, timer}
    this._nextId = 0;
    this._outbox = new Map(); // client_msg_id -> pending send, in the order sent
    this._conversations = new Map();
    this.user = null;
    this.session = null;
    for (const [id, seq] of Object.entries(options.cursors ?? {})) {
      this._conversations.set(id, new ConversationState(id, seq));
    }
  }

  /** 'idle', 'connecting', 'open', 'reconnecting' or 'closed'. */
  get state() {
    return this._state;
  }

  /** Connect and log in; resolves with the login_ok frame. */
  connect() {
    if (this._state !== 'idle' && this._state !== 'closed') {
      return Promise.reject(new ParleyError('already_connected', 'connect() was called twice'));
    }
    const opened = new Promise((resolve, reject) => {
      const offOpen = this.on('open', (frame) => { offOpen(); offStop(); resolve(frame); });
      const offStop = this.on('stopped', (err) => { offOpen(); offStop(); reject(err); });
    });
    this._open('connecting');
    return opened;
  }

  /** Close for good: no reconnect. Sends still waiting for send_ok fail with `closed`. */
  close() {
    this._stop(null);
  }

  // --- sending --------------------------------------------------------------------------

  /**
   * Send a message; resolves with the stored message once the server has it. Survives
   * reconnects: it is repeated with the same client message ID until it is answered.
   */
  send({ to, groupId, content, clientMsgId }) {
    const id = clientMsgId ?? globalThis.crypto.randomUUID();
    const frame = { type: 'send', content, client_msg_id: id };
    if (groupId !== undefined) frame.group_id = groupId;
    else frame.to = to;
    return new Promise((resolve, reject) => {
      this._outbox.set(id, { frame, resolve, reject, timer: null });
      if (this._state === 'open') this._transmit(id);
    });
  }

  /** Text shorthand for `send`. */
  sendText(target, text) {
    return this.send({ ...target, content: { type: 'text', text } });
  }

  /** Client message IDs of sends not yet answered. */
  outbox() {
    return [...this._outbox.keys()];
  }

  _transmit(clientMsgId) {
    const entry = this._outbox.get(clientMsgId);
    if (!entry || this._state !== 'open') return;
    clearTimeout(entry.timer);
    // No answer in time on an open connection: repeat it; a repeat is stored only once.
    entry.timer = this._later(this.options.sendTimeoutMs, () => this._transmit(clientMsgId));
    this._request(entry.frame, { timeoutMs: 0 }).then(
      (reply) => this._sendAnswered(clientMsgId, reply),
      (err) => this._sendRefused(clientMsgId, err),
    );
  }

  _sendAnswered(clientMsgId, reply) {
    const entry = this._outbox.get(clientMsgId);
    if (!entry) return; // an earlier try was answered first
    this._outbox.delete(clientMsgId);
    clearTimeout(entry.timer);
    const frame = entry.frame;
    const message = {
      msg_id: reply.msg_id,
      conversation_id: reply.conversation_id,
      seq: reply.seq,
      from: this.user,
      to: frame.to ?? frame.group_id,
      content: frame.content,
      client_msg_id: clientMsgId,
      created_at: reply.created_at,
      risk: null,
    };
    entry.resolve({ ...message, duplicate: reply.duplicate });
    this._accept(message, { own: true });
  }

  _sendRefused(clientMsgId, err) {
    const entry = this._outbox.get(clientMsgId);
    if (!entry) return;
    if (err.code === 'connection_lost') return; // repeated after the next login
    clearTimeout(entry.timer);
    if (RETRY_SEND_CODES.has(err.code)) {
      entry.timer = this._later(this._backoff(1), () => this._transmit(clientMsgId));
    } else if (WAIT_SEND_CODES.has(err.code)) {
      const wait = err.data?.retry_after_ms ?? this.options.backoffInitialMs;
      entry.timer = this._later(wait, () => this._transmit(clientMsgId));
    } else {
      this._outbox.delete(clientMsgId);
      entry.reject(err);
    }
  }

  // --- reading --------------------------------------------------------------------------

  /** The conversation list, newest first, with unread counts as the client knows them. */
  conversations() {
    return [...this._conversations.values()]
      .filter((c) => c.summary)
      .map((c) => ({ ...c.summary }))
      .sort((a, b) => (a.updated_at < b.updated_at ? 1 : a.updated_at > b.updated_at ? -1 : 0));
  }

  /** The last contiguous seq of every conversation: keep it to resume from next time. */
  cursors() {
    const out = {};
    for (const c of this._conversations.values()) out[c.id] = c.lastContiguous;
    return out;
  }

  /** Move the read marker; `seq` defaults to the last contiguous seq. */
  async markRead(conversationId, seq) {
    const conv = this._conversation(conversationId);
    const reply = await this._request({
      type: 'read', conversation_id: conversationId, seq: seq ?? conv.lastContiguous,
    });
    this._applyRead(conversationId, reply.seq);
    return reply.seq;
  }

  /** Tell the server the client holds everything up to the last contiguous seq. */
  async ack(conversationId) {
    const conv = this._conversation(conversationId);
    return this._request({ type: 'ack', conversation_id: conversationId,
                           seq: conv.lastContiguous });
  }

  /** Any other request of docs/protocol.md (group_create, recall, ...); resolves its reply. */
  request(frame) {
    return this._request(frame);
  }

  /** Catch up now: page through `conversations` and sync where behind. */
  async catchUp() {
    const listed = [];
    let cursor = null;
    do {
      const frame = { type: 'conversations', limit: 200 };
      if (cursor) frame.cursor = cursor;
      const page = await this._request(frame);
      listed.push(...page.conversations);
      cursor = page.next_cursor;
    } while (cursor);
    for (const entry of listed) {
      const conv = this._conversation(entry.conversation_id);
      conv.summary = entry;
      if (entry.last_seq > conv.lastContiguous) this._sync(conv);
    }
    this.emit('conversations', this.conversations());
    await Promise.all(listed.map((e) => this._syncDone(this._conversation(e.conversation_id))));
  }

  // --- connection lifecycle -------------------------------------------------------------

  _open(state) {
    this._setState(state);
    this._lastError = null;
    this._kickReason = undefined;
    const socket = new this._WebSocket(this.options.url);
    this._socket = socket;
    socket.onopen = () => this._login(socket);
    socket.onmessage = (event) => this._receive(socket, event.data);
    socket.onclose = (event) => this._closed(socket, event.code, event.reason);
    socket.onerror = () => {}; // a close event follows; that is where it is handled
  }

  async _login(socket) {
    const frame = { type: 'login', app_key: this.options.appKey, token: this._token,
                    platform: this.options.platform };
    let reply;
    try {
      reply = await this._request(frame);
    } catch (err) {
      if (err.code !== 'connection_lost') {
        this._lastError = err;
        this.emit('error', err);
      }
      return; // the server closes after a refused login; _closed decides what next
    }
    if (socket !== this._socket) return;
    this._attempt = 0;
    this.user = reply.user_id_md5;
    this.session = { expiresAt: reply.expires_at, heartbeat: reply.heartbeat,
                     limits: reply.limits };
    this._setState('open');
    this._startHeartbeat(socket, reply.heartbeat);
    this.emit('open', reply);
    for (const id of this._outbox.keys()) this._transmit(id);
    this.catchUp().catch((err) => {
      if (err.code !== 'connection_lost') this.emit('error', err);
    });
  }

  _startHeartbeat(socket, { interval_ms: interval, timeout_ms: timeout }) {
    this._lastSent = Date.now();
    this._lastHeard = Date.now();
    const tick = () => {
      if (socket !== this._socket) return;
      const now = Date.now();
      if (now - this._lastHeard > timeout) {
        // No answer to our heartbeats: the connection is dead even if TCP has not noticed.
        this._drop(socket, 'heartbeat_lost');
        return;
      }
      if (now - this._lastSent >= interval) this._write('h');
      this._later(Math.max(10, Math.min(interval, timeout) / 2), tick);
    };
    this._later(Math.max(10, interval / 2), tick);
  }

  _closed(socket, code, reason) {
    if (socket !== this._socket) return; // an abandoned socket closing late
    this._lost(code, reason);
  }

  _lost(code, reason) {
    this._socket = null;
    this._failRequests(new ParleyError('connection_lost', 'the connection closed'));
    if (this._state === 'closed') return;
    this.emit('close', { code, reason });
    this._closeEvent(code, reason);
    if (code === CloseCode.TOKEN_EXPIRED && this.options.getToken) {
      this._renewAndReconnect();
    } else if (FINAL_CODES.has(code) || code === CloseCode.TOKEN_EXPIRED) {
      const err = this._lastError ?? new ParleyError(reason || 'closed', reason);
      err.closeCode = code;
      this._stop(err);
    } else {
      const delay = AT_ONCE_CODES.has(code) ? 0 : this._backoff(this._attempt++);
      this._setState('reconnecting');
      this._later(delay, () => this._open('reconnecting'));
    }
  }

  _closeEvent(code, reason) {
    const named = {
      [CloseCode.KICKED]: 'kicked',
      [CloseCode.TOKEN_EXPIRED]: 'tokenExpired',
      [CloseCode.REPLACED]: 'replaced',
      [CloseCode.DRAINING]: 'draining',
      [CloseCode.USER_DELETED]: 'userDeleted',
    }[code];
    if (named) this.emit(named, { code, reason, kickReason: this._kickReason });
  }

  async _renewAndReconnect() {
    this._setState('reconnecting');
    try {
      this._token = await this.options.getToken();
    } catch (err) {
      this._stop(new ParleyError('token_expired', `getToken failed: ${err}`, undefined, 4003));
      return;
    }
    this._open('reconnecting');
  }

  _drop(socket, why) {
    this._lost(1006, why); // first, so the socket's own close event is ignored
    try {
      socket.close(4000, why);
    } catch {
      // already closing
    }
  }

  _stop(err) {
    if (this._state === 'closed') return;
    this._setState('closed');
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    const ended = err ?? new ParleyError('closed', 'the client was closed');
    for (const entry of this._outbox.values()) {
      clearTimeout(entry.timer);
      entry.reject(ended);
    }
    this._outbox.clear();
    const socket = this._socket;
    this._socket = null;
    this._failRequests(new ParleyError('closed', 'the client was closed'));
    if (socket) socket.close(1000, 'client_closed');
    this.emit('stopped', ended);
  }

  _setState(state) {
    if (this._state === state) return;
    this._state = state;
    this.emit('state', state);
  }

  _backoff(attempt) {
    return backoffDelay(attempt, this.options.backoffInitialMs, this.options.backoffMaxMs,
                        this._random);
  }

  _later(ms, fn) {
    const timer = setTimeout(() => { this._timers.delete(timer); fn(); }, ms);
    this._timers.add(timer);
    return timer;
  }

  // --- frames ---------------------------------------------------------------------------

  _write(text) {
    this._lastSent = Date.now();
    this._socket.send(text);
  }

  _request(frame, { timeoutMs = this.options.requestTimeoutMs } = {}) {
    if (!this._socket || this._socket.readyState !== 1) {
      return Promise.reject(new ParleyError('connection_lost', 'not connected'));
    }
    const id = `r${++this._nextId}`;
    return new Promise((resolve, reject) => {
      const timer = timeoutMs
        ? this._later(timeoutMs, () => {
          this._requests.delete(id);
          reject(new ParleyError('timeout', `no reply to ${frame.type} in ${timeoutMs} ms`));
        })
        : null;
      this._requests.set(id, { resolve, reject, timer });
      this._write(JSON.stringify({ ...frame, id }));
    });
  }

  _failRequests(err) {
    const requests = [...this._requests.values()];
    this._requests.clear();
    for (const { reject, timer } of requests) {
      clearTimeout(timer);
      reject(err);
    }
  }

  _receive(socket, data) {
    if (socket !== this._socket) return;
    this._lastHeard = Date.now();
    if (data === 'h') return;
    const frame = JSON.parse(typeof data === 'string' ? data : String(data));
    if ('id' in frame && frame.id !== null && this._requests.has(frame.id)) {
      const { resolve, reject, timer } = this._requests.get(frame.id);
      this._requests.delete(frame.id);
      clearTimeout(timer);
      if (frame.type === 'error') reject(ParleyError.fromFrame(frame));
      else resolve(frame);
      return;
    }
    this._push(frame);
  }

  _push(frame) {
    switch (frame.type) {
      case 'message':
        this._accept(frame.message, { own: false });
        break;
      case 'read':
        this._applyRead(frame.conversation_id, frame.seq);
        this.emit('read', { conversationId: frame.conversation_id, seq: frame.seq });
        break;
      case 'resync':
        this.catchUp().catch((err) => this.emit('error', err));
        break;
      case 'kicked':
        this._kickReason = frame.reason;
        break;
      case 'error':
        // Pushed errors come right before a close; keep it to explain the close.
        this._lastError = ParleyError.fromFrame(frame);
        this.emit('error', this._lastError);
        break;
      default:
        this.emit('push', frame); // presence, join_request, join_rejected, ...
    }
  }

  // --- ordered, de-duplicated delivery --------------------------------------------------

  _conversation(id) {
    let conv = this._conversations.get(id);
    if (!conv) {
      conv = new ConversationState(id);
      this._conversations.set(id, conv);
    }
    return conv;
  }

  _accept(message, { own }) {
    const conv = this._conversation(message.conversation_id);
    if (message.seq <= conv.lastContiguous || conv.recentIds.has(message.msg_id)) return;
    if (!own || !conv.pending.has(message.seq)) conv.pending.set(message.seq, message);
    this._drain(conv);
    // A gap before this message: fetch what is missing; the page fills it in order.
    if (conv.pending.size > 0) this._sync(conv);
  }

  _drain(conv) {
    while (conv.pending.has(conv.lastContiguous + 1)) {
      const message = conv.pending.get(conv.lastContiguous + 1);
      conv.pending.delete(message.seq);
      this._deliver(conv, message);
    }
  }

  _deliver(conv, message) {
    conv.lastContiguous = message.seq;
    conv.remember(message.msg_id);
    this._countUnread(conv, message);
    this.emit('message', message);
    if (message.content?.type === 'system' && message.content.event === 'recalled') {
      this.emit('recall', { conversationId: conv.id, msgId: message.content.msg_id,
                            seq: message.content.seq });
    }
  }

  _sync(conv) {
    if (conv.syncing) {
      conv.syncAgain = true;
      return;
    }
    conv.syncing = true;
    conv.syncDone = this._syncLoop(conv)
      .catch((err) => {
        if (err.code !== 'connection_lost' && err.code !== 'closed') this.emit('error', err);
      })
      .finally(() => { conv.syncing = false; });
  }

  async _syncDone(conv) {
    while (conv.syncing) await conv.syncDone;
  }

  async _syncLoop(conv) {
    do {
      conv.syncAgain = false;
      let page;
      do {
        page = await this._request({ type: 'sync', conversation_id: conv.id,
                                     after_seq: conv.lastContiguous,
                                     limit: this.options.syncPageSize });
        this._applyPage(conv, page);
      } while (page.has_more);
    } while (conv.syncAgain || conv.pending.size > 0 && this._gapRemains(conv));
  }

  _gapRemains(conv) {
    return !conv.pending.has(conv.lastContiguous + 1) && conv.pending.size > 0;
  }

  _applyPage(conv, page) {
    // A page may skip seqs (outside the user's window, hidden by reviewers): those never
    // come, so every message of the page counts as contiguous.
    for (const message of page.messages) {
      if (message.seq <= conv.lastContiguous) continue;
      conv.pending.delete(message.seq);
      for (const seq of conv.pending.keys()) {
        if (seq < message.seq) conv.pending.delete(seq); // cannot be: the page is complete
      }
      if (!conv.recentIds.has(message.msg_id)) this._deliver(conv, message);
      else conv.lastContiguous = message.seq;
    }
    if (!page.has_more && page.messages.length === 0 && page.last_seq > conv.lastContiguous) {
      conv.lastContiguous = page.last_seq;
    }
    this._drain(conv);
  }

  // --- unread counts --------------------------------------------------------------------

  _countUnread(conv, message) {
    const summary = conv.summary ?? (conv.summary = this._newSummary(conv.id, message));
    if (message.seq <= summary.last_seq && summary.last_message) return; // already counted
    summary.last_seq = Math.max(summary.last_seq, message.seq);
    summary.last_message = message;
    summary.updated_at = message.created_at;
    if (message.from === this.user && this.user) {
      // Sending moves the sender's own read marker to the message.
      summary.read_seq = message.seq;
      summary.unread = 0;
      summary.mentioned = false;
    } else if (COUNTED_CONTENT.has(message.content?.type) && message.seq > summary.read_seq) {
      summary.unread += 1;
      const mentions = message.content.mentions ?? [];
      if (mentions.includes('all') || mentions.includes(this.user)) summary.mentioned = true;
    }
    this.emit('conversation', { ...summary });
  }

  _newSummary(id, message) {
    const kind = id.startsWith('grp:') ? 'group' : id.startsWith('sys:') ? 'system' : 'p2p';
    const ids = kind === 'p2p' ? id.split(':').slice(1) : [];
    const peer = kind === 'p2p' ? (ids.find((u) => u !== this.user) ?? this.user) : null;
    return { conversation_id: id, kind, peer, last_seq: 0, read_seq: 0, delivered_seq: 0,
             unread: 0, mentioned: false, updated_at: message.created_at,
             last_message: null };
  }

  _applyRead(conversationId, seq) {
    const summary = this._conversation(conversationId).summary;
    if (!summary || seq < summary.read_seq) return;
    summary.read_seq = seq;
    // Exact once the marker reaches the end; otherwise the next listing corrects it.
    if (seq >= summary.last_seq) {
      summary.unread = 0;
      summary.mentioned = false;
    }
    this.emit('conversation', { ...summary });
  }
}
