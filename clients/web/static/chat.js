// Tertulia's browser client: one WebSocket to the bridge that reconnects by
// itself, and helpers that render server frames as text (never as HTML).
// Plain ES module: no build step.

/** wsURL is the WebSocket address of path on the server this page came from. */
export function wsURL(path) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

/** The frame types a server sends (DESIGN.md); others are shown as "system". */
const KNOWN_TYPES = new Set([
  'system', 'user_joined', 'user_left', 'message', 'room_joined', 'room_left',
  'private_message', 'private_sent', 'admin_broadcast', 'error', 'refreshed',
]);

/**
 * endedFor says why the server ended a session for good (its token expired,
 * an administrator disconnected or banned the user), or null for a close
 * worth reconnecting after. Reconnecting after these would only meet the
 * same close again.
 */
export function endedFor(ev) {
  if (ev.code === 4001) return 'Session expired (token expired): log in again';
  if (ev.code !== 4003) return null;
  if (ev.reason.startsWith('banned')) return `Banned: ${ev.reason}`;
  return `Disconnected by an administrator: ${ev.reason || 'no reason given'}`;
}

/**
 * Connection keeps one WebSocket open to the bridge. When the connection drops
 * without the user asking, it reconnects with exponential backoff and full
 * jitter (so that a restarted server is not hit by every page at once).
 */
export class Connection {
  /**
   * @param {object} o
   * @param {string} o.path endpoint, e.g. /api/v1/ws
   * @param {() => string[]} [o.protocols] subprotocols for each attempt
   * @param {(frame: object) => void} o.onFrame every server frame
   * @param {(state: string, detail?: string) => void} o.onState
   *   'connecting' | 'connected' | 'reconnecting' | 'disconnected'
   */
  constructor({ path, protocols, onFrame, onState }) {
    this.path = path;
    this.protocols = protocols || (() => []);
    this.onFrame = onFrame;
    this.onState = onState;
    this.socket = null;
    this.wanted = false; // the user wants to be connected
    this.attempt = 0;
    this.timer = null;
    this.lastClose = null; // { code, reason } of the last connection that ended
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    this.wanted = true;
    clearTimeout(this.timer);
    if (this.socket) return;
    this.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const socket = new WebSocket(wsURL(this.path), this.protocols());
    this.socket = socket;
    let welcomed = false;
    socket.onmessage = (ev) => {
      for (const frame of events(ev.data)) {
        if (frame.type === 'system' && !welcomed) {
          welcomed = true;
          this.attempt = 0;
          this.onState('connected');
        }
        this.onFrame(frame);
      }
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.lastClose = { code: ev.code, reason: ev.reason };
      // A token refused before the welcome will be refused again, and so
      // will a session that expired, was disconnected or is banned: stop.
      const ended = endedFor(ev);
      if (!this.wanted || ended || (ev.code === 1008 && !welcomed)) {
        this.wanted = false;
        this.onState('disconnected', ended || ev.reason || `closed (${ev.code})`);
        return;
      }
      // 1012 "service restart": the server is going away for a moment and
      // closes its pages spread over time; any other node behind this
      // origin will do. Like a dropped connection, it is retried after a
      // random wait.
      const delay = backoff(this.attempt++);
      const why = ev.code === 1012 ? 'server restarting' : ev.reason || 'connection lost';
      this.onState('reconnecting', `${why}; retrying in ${(delay / 1000).toFixed(1)}s`);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  disconnect() {
    this.wanted = false;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, 'bye');
  }

  /** refresh hands the session a new token for the same user; the server answers 'refreshed'. */
  refresh(token) {
    return this.send({ type: 'refresh', token });
  }

  /** send writes one frame; false if the connection is not open. */
  send(frame) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }
}

/**
 * events are the server frames one WebSocket message carries, in order. With
 * the tertulia.v1 subprotocol the server sends the frames it has queued
 * together in one message, one JSON object per line (JSON never holds a raw
 * newline); a plain connection gets one per message. A line that is not
 * JSON is skipped.
 */
export function events(data) {
  const frames = [];
  for (const line of String(data).split('\n')) {
    try {
      frames.push(JSON.parse(line));
    } catch {
      // not a frame: nothing to show
    }
  }
  return frames;
}

/** backoff is the delay before reconnect attempt n: 0.5s doubling to 15s, full jitter. */
export function backoff(n) {
  const cap = Math.min(15000, 500 * 2 ** n);
  return cap / 2 + Math.random() * (cap / 2);
}

/**
 * renderFrame appends a line for frame to list. Every piece of text goes in
 * with textContent, so a message such as <img onerror=...> shows as written.
 */
export function renderFrame(list, frame, self) {
  const type = KNOWN_TYPES.has(frame.type) ? frame.type : 'system';
  const line = document.createElement('div');
  line.className = `line ${type}`;
  line.dataset.type = type;
  if (frame.room) line.dataset.room = frame.room;

  const time = document.createElement('span');
  time.className = 'time';
  const ts = new Date(frame.timestamp);
  time.textContent = `[${isNaN(ts) ? '--:--:--' : ts.toLocaleTimeString()}] `;
  line.append(time);

  if (type === 'message' || type === 'private_message') {
    const who = document.createElement('strong');
    who.className = 'sender';
    let label = frame.sender || frame.user_id || '?';
    if (type === 'private_message') label += ' (private)';
    if (frame.room) label += ` @${frame.room}`;
    who.textContent = `${label}: `;
    line.append(who);
    if (self && frame.user_id === self) line.classList.add('own');
  }
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = frame.message ?? '';
  if (type === 'error' && frame.code) text.textContent += ` (${frame.code})`;
  if (type === 'room_left' && frame.kicked) text.textContent += ' (kicked)';
  line.append(text);

  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(line);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** setStatus shows the connection state in el. */
export function setStatus(el, state, detail) {
  const labels = {
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    disconnected: 'Disconnected',
  };
  el.className = state;
  el.dataset.state = state;
  el.textContent = detail ? `${labels[state]} — ${detail}` : labels[state];
}
