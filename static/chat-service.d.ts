// Type declarations for /static/chat-service.js, the agentd customer chat library
// (the "Chat Service JS API"). Reference: docs/chat-service-api.md.
//
// The script is a classic script that sets the global `chat`; these declarations describe that
// global. Usage from TypeScript: add this file to the compilation (or reference it with
// /// <reference path="chat-service.d.ts" />) and use `chat.startSession(...)`.

declare namespace AgentdChat {
  /** The fail event: server error codes (docs/protocol.md) or the library's own. */
  interface ErrorInfo {
    code: ServerErrorCode | LibraryErrorCode | (string & {});
    description: string;
  }

  type ServerErrorCode =
    | 'bad_frame'
    | 'frame_too_large'
    | 'invalid_utf8'
    | 'unknown_command'
    | 'invalid_argument'
    | 'invalid_text'
    | 'not_started'
    | 'already_started'
    | 'service_not_found'
    | 'session_not_found'
    | 'session_ended'
    | 'userdata_forbidden'
    | 'userdata_invalid_key'
    | 'userdata_invalid_value'
    | 'userdata_too_many_keys'
    | 'userdata_too_large'
    | 'notice_too_large'
    | 'rate_limited'
    | 'origin_not_allowed'
    | 'unavailable'
    | 'internal';

  /** Codes the library produces itself (see docs/chat-service-api.md, "Error codes"). */
  type LibraryErrorCode =
    | 'invalid_argument'
    | 'timeout'
    | 'network_error'
    | 'session_ended'
    | 'origin_not_allowed'
    | 'frame_too_large'
    | 'unsupported';

  interface FailEvent {
    error: ErrorInfo;
  }

  /** restoreSession() with nothing stored fails with an empty object (no `error`). */
  type RestoreFailEvent = FailEvent | Record<string, never>;

  /**
   * The seed's "promise" object: done/fail/always chain and return the same object; it is also a
   * thenable, so `await` works (a failure throws the fail event).
   */
  interface Request<T, F = FailEvent> extends PromiseLike<T> {
    done(fn: (event: T) => void): Request<T, F>;
    fail(fn: (event: F) => void): Request<T, F>;
    always(fn: (event: T | F) => void): Request<T, F>;
    then<R1 = T, R2 = never>(
      onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
      onrejected?: ((reason: F) => R2 | PromiseLike<R2>) | null,
    ): Promise<R1 | R2>;
    catch<R = never>(onrejected?: ((reason: F) => R | PromiseLike<R>) | null): Promise<T | R>;
    finally(onfinally?: (() => void) | null): Promise<T>;
  }

  /** What the library persists between page loads. */
  interface State {
    sessionId: string;
    secureKey: string;
    serverUrl?: string;
    /** Next transcript index this page had not received yet. */
    index?: number;
    /** Next side-channel seq this page had not received yet. */
    seq?: number;
  }

  /** Third-party persistence; replaces the default `agentd_chat` cookie. */
  interface StateStorage {
    /** Write the state; `null` means "forget it" (the session ended or cannot be restored). */
    write(state: State | null): void;
    /** Return what write() stored: the object, its JSON, or null/undefined. May throw (= nothing stored). */
    read(): State | string | null | undefined;
  }

  type LogLevel = 'debug' | 'info' | 'warn' | 'error';

  type Logger =
    | Partial<Record<LogLevel, (...args: unknown[]) => void>>
    | ((level: LogLevel, ...args: unknown[]) => void);

  interface Options {
    /**
     * agentd's base URL. Only its origin is used (the socket is origin + /ws/chat), so the seed's
     * 'http://host/backend/cometd/' style works. Default: the origin chat-service.js was loaded from.
     * restoreSession() defaults to the serverUrl stored with the session.
     */
    serverUrl?: string;
    /** Service (queue) name; the server's default is `default`. startSession only. */
    service?: string;
    /** The customer's display name. startSession only. */
    username?: string;
    /** startSession only. */
    subject?: string;
    /** UserData attached when the session starts. startSession only. */
    userData?: Record<string, string | number | boolean>;
    stateStorage?: StateStorage;
    /** Lifetime of the default cookie, in seconds since the last write. Default 1800. */
    cookieMaxAge?: number;
    /** Default: silent. */
    logger?: Logger;
    /** Milliseconds before a command without an answer fails with `timeout`. Default 30000. */
    commandTimeout?: number;
    /**
     * restoreSession only. 'all' (default): the whole transcript and side channel are replayed to
     * the callbacks, marked `restored: true`, so the page can redraw the conversation. 'missed':
     * only what the previous page had not received yet.
     */
    replay?: 'all' | 'missed';
  }

  interface PartyType {
    client?: true;
    agent?: true;
    supervisor?: true;
    external?: true;
  }

  interface Party {
    id: string;
    name: string;
    type: PartyType;
  }

  type TranscriptKind = 'party_joined' | 'party_left' | 'message' | 'notice' | 'session_ended';

  interface SessionEndReason {
    leaveRequest?: true;
    agent?: true;
    error?: true;
    timeout?: true;
  }

  /** A transcript event (onAgentConnected, onAgentDisconnected, onMessageReceived, getTranscript). */
  interface TranscriptEvent {
    index: number;
    kind: TranscriptKind | (string & {});
    /** Milliseconds since the Unix epoch. */
    timestamp: number;
    /** True when the event happened before this page restored the session. */
    restored: boolean;
    party: Party | null;
    /** Present for `message` (type text|url) and `notice` (type notice) events. */
    content?: { text: string; type: 'text' | 'url' | 'notice' | (string & {}) };
    /** Present for `session_ended` events. */
    reason?: SessionEndReason;
  }

  interface MessageEvent extends TranscriptEvent {
    content: { text: string; type: 'text' | 'url' | 'notice' | (string & {}) };
  }

  interface TypingEvent {
    party: Party | null;
    isTyping: boolean;
    typedText: string;
    timestamp: number;
  }

  interface SessionEndedEvent {
    reason: SessionEndReason;
    /** Index of the session_ended transcript event; absent when the end was inferred locally. */
    index?: number;
    timestamp: number;
    restored: boolean;
  }

  interface NoticeEvent {
    seq: number;
    party: Party | null;
    payload: unknown;
    timestamp: number;
    restored: boolean;
  }

  interface UserDataUpdatedEvent {
    /** Changed keys; null means the key was deleted or is no longer visible. */
    userData: Record<string, string | number | boolean | null>;
    seq: number;
    timestamp: number;
    restored: boolean;
  }

  interface QueuePositionEvent {
    /** 1 = next. */
    position: number;
    timestamp: number;
  }

  interface TimestampEvent {
    timestamp: number;
  }

  interface SendMessageEvent {
    index: number;
    timestamp: number;
  }

  interface NoticeSentEvent {
    seq: number;
    timestamp: number;
  }

  interface TranscriptResult {
    transcript: TranscriptEvent[];
    /** Same array as `transcript`. */
    events: TranscriptEvent[];
    /** The index after the last returned event (fromIndex when none was returned). */
    nextIndex: number;
    timestamp: number;
  }

  interface UserDataResult {
    /** `{key: value}`, or `{}` when the key is absent or not visible to the customer. */
    userData: Record<string, string | number | boolean>;
    timestamp: number;
  }

  type Handler<E> = (event: E) => void;

  interface Session {
    /** The session id (null never happens once done() was called). */
    readonly sessionId: string;
    /** The customer's own party. */
    readonly party: Party | null;
    /** True once the session_ended event was delivered. */
    readonly ended: boolean;
    /** True while the socket is open and attached; commands issued otherwise are queued. */
    readonly connected: boolean;

    sendMessage(message: string | { message: string; type?: 'text' | 'url' }): Request<SendMessageEvent>;
    /** sendTyping() means { isTyping: true }. */
    sendTyping(options?: { isTyping?: boolean; typedText?: string }): Request<TimestampEvent>;
    leave(): Request<TimestampEvent>;
    getTranscript(options?: { fromIndex?: number }): Request<TranscriptResult>;
    updateUserData(data: Record<string, string | number | boolean>): Request<TimestampEvent>;
    /** Alias of updateUserData. */
    setUserData(data: Record<string, string | number | boolean>): Request<TimestampEvent>;
    getUserData(key: string): Request<UserDataResult>;
    deleteUserData(key: string): Request<TimestampEvent>;
    sendCustomNotice(payload: unknown): Request<NoticeSentEvent>;
    /** Alias of sendCustomNotice. */
    sendNotification(payload: unknown): Request<NoticeSentEvent>;

    // Callbacks are memorized: a handler registered late first receives every earlier event of
    // its kind, in order. Each returns the session for chaining.
    onAgentConnected(fn: Handler<TranscriptEvent>): Session;
    onAgentDisconnected(fn: Handler<TranscriptEvent>): Session;
    onMessageReceived(fn: Handler<MessageEvent>): Session;
    onAgentTyping(fn: Handler<TypingEvent>): Session;
    onSessionEnded(fn: Handler<SessionEndedEvent>): Session;
    onError(fn: Handler<FailEvent>): Session;
    onNotice(fn: Handler<NoticeEvent>): Session;
    onUserDataUpdated(fn: Handler<UserDataUpdatedEvent>): Session;
    onQueuePosition(fn: Handler<QueuePositionEvent>): Session;
  }

  interface ChatService {
    readonly version: string;
    /** The websocket subprotocol, 'agentd-chat.v1'. */
    readonly protocol: string;
    startSession(options?: Options): Request<Session>;
    /** Fails with `{}` (no `error`) when nothing is stored. */
    restoreSession(options?: Options): Request<Session, RestoreFailEvent>;
  }
}

declare var chat: AgentdChat.ChatService;

interface Window {
  chat: AgentdChat.ChatService;
}
