// Types of parley.js. Field names of frames and messages are the wire names of
// docs/protocol.md, unchanged.

export declare const CloseCode: Readonly<{
  GOING_AWAY: 1001; TOO_BIG: 1009; BAD_FRAME: 4000; LOGIN_REQUIRED: 4001;
  LOGIN_FAILED: 4002; TOKEN_EXPIRED: 4003; KICKED: 4004; HEARTBEAT_TIMEOUT: 4005;
  USER_DELETED: 4006; SLOW_CONSUMER: 4008; DRAINING: 4010; REPLACED: 4011;
  TOO_MANY_FRAMES: 4012;
}>;

/**
 * `code` is the server's stable error code (docs/protocol.md, "Error codes"), or one of
 * the SDK's own: `connection_lost` (the connection closed before a reply), `timeout` (no
 * reply in time), `closed` (the client was closed), `already_connected`.
 */
export declare class ParleyError extends Error {
  readonly code: string;
  readonly data?: Record<string, unknown>;
  /** The close code that followed, when the error ended the connection. */
  closeCode?: number;
}

export declare function backoffDelay(attempt: number, initialMs: number, maxMs: number,
                                     random?: () => number): number;

export type Content =
  | { type: 'text'; text: string; mentions?: string[] }
  | { type: 'custom'; custom_type: string; data?: unknown; text?: string }
  | { type: 'system'; event: string; [field: string]: unknown }
  | { type: 'recalled' };

export interface Message {
  msg_id: string;
  conversation_id: string;
  seq: number;
  from: string | null;
  to: string | null;
  content: Content;
  client_msg_id: string | null;
  created_at: string;
  risk: string | null;
}

export interface SentMessage extends Message {
  /** True when the server already had this client message ID (an earlier try arrived). */
  duplicate: boolean;
}

export interface Conversation {
  conversation_id: string;
  kind: 'p2p' | 'system' | 'group';
  peer: string | null;
  last_seq: number;
  read_seq: number;
  delivered_seq: number;
  unread: number;
  mentioned: boolean;
  updated_at: string;
  last_message: Message | null;
  role?: string | null;
  left?: boolean;
}

export interface LoginOk {
  type: 'login_ok';
  user_id_md5: string;
  expires_at: string;
  heartbeat: { interval_ms: number; timeout_ms: number };
  limits: { max_frame_bytes: number; max_text_chars: number; max_custom_bytes: number };
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** With `kicked`: the reason the App Server gave. */
  kickReason?: string;
}

export interface ParleyOptions {
  /** `ws://host:port/ws` or `wss://...`. */
  url: string;
  appKey: string;
  /** A login token the App Server minted for this user. */
  token: string;
  /** Called after 4003 for a new token; without it the client stops on expiry. */
  getToken?: () => Promise<string>;
  /** Default `'web'`. */
  platform?: 'ios' | 'android' | 'web' | 'desktop' | 'other';
  /** A WebSocket class; defaults to the global one (browsers, Node 22+). */
  WebSocket?: unknown;
  /** Last contiguous seq per conversation to resume from, as `cursors()` returned. */
  cursors?: Record<string, number>;
  /** Reconnect delays: full jitter under initial * 2^attempt, at most max. 500 / 30000. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** How long a send waits for send_ok on an open connection before it is repeated. */
  sendTimeoutMs?: number;
  requestTimeoutMs?: number;
  syncPageSize?: number;
  /** Random source for the jitter, in [0, 1). */
  random?: () => number;
}

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ParleyEvents {
  /** Logged in (first time and after every reconnect). */
  open: LoginOk;
  /** A message, once per msg_id, in seq order within its conversation. */
  message: Message;
  /** A message was recalled: show the tombstone in its place. */
  recall: { conversationId: string; msgId: string; seq: number };
  /** The list after a catch-up. */
  conversations: Conversation[];
  /** One entry changed: new message, read marker. */
  conversation: Conversation;
  /** Another device of the user moved the read marker. */
  read: { conversationId: string; seq: number };
  state: ConnectionState;
  close: CloseInfo;
  kicked: CloseInfo;
  tokenExpired: CloseInfo;
  replaced: CloseInfo;
  draining: CloseInfo;
  userDeleted: CloseInfo;
  /** An error frame the server pushed, or a request of the SDK's own that failed. */
  error: ParleyError;
  /** The client stopped for good: close(), or a close code after which it cannot retry. */
  stopped: ParleyError;
  /** Any other push: presence, join_request, join_rejected. */
  push: Record<string, unknown> & { type: string };
  /** A callback threw; delivery went on. */
  callbackError: unknown;
}

export declare class ParleyClient {
  constructor(options: ParleyOptions);
  readonly state: ConnectionState;
  /** The logged-in user's MD5 ID, after the first login. */
  readonly user: string | null;
  on<E extends keyof ParleyEvents>(event: E, handler: (payload: ParleyEvents[E]) => void
                                  ): () => void;
  connect(): Promise<LoginOk>;
  /** Stop for good; sends still waiting for send_ok reject with `closed`. */
  close(): void;
  send(message: { to?: string; groupId?: string; content: Content; clientMsgId?: string }
      ): Promise<SentMessage>;
  sendText(target: { to: string } | { groupId: string }, text: string): Promise<SentMessage>;
  outbox(): string[];
  conversations(): Conversation[];
  cursors(): Record<string, number>;
  markRead(conversationId: string, seq?: number): Promise<number>;
  ack(conversationId: string): Promise<Record<string, unknown>>;
  request(frame: { type: string; [field: string]: unknown }): Promise<any>;
  catchUp(): Promise<void>;
}
