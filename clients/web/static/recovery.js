// Recovery for Tertulia's pages: what a page remembers so that a new
// connection picks up exactly where the last one ended (DESIGN.md, "History,
// acknowledgements, recovery"). It knows no WebSocket: the page feeds it
// every frame (observe) and sends what it returns. Plain ES module.

/** logKey names a room's log, or the user's inbox. */
const INBOX = '\u0000inbox';

/** RETRY are the error codes of a frame not carried out now, worth sending again later. */
export const RETRY = new Set(['unavailable', 'rate_limited']);

/** key identifies one logged message: its log, epoch and offset. */
function key(log, epoch, offset) {
  return `${log}\n${epoch}\n${offset}`;
}

/**
 * Recovery keeps, across connections: the last offset and epoch seen in
 * each room, the position of the private inbox, the frames with an id not
 * yet acknowledged, and which logged messages were shown (a message is
 * never rendered twice, whichever way it came: live, replayed, reloaded).
 */
export class Recovery {
  /** @param {{history?: number}} o history: how many past messages a join shows */
  constructor({ history = 50 } = {}) {
    this.history = history;
    this.prefix = Math.random().toString(36).slice(2, 10);
    this.seq = 0;
    this.rooms = new Map(); // room -> { offset, epoch } of the last message seen
    this.joinIds = new Map(); // id of a join frame -> room
    this.joined = new Set(); // rooms to join again on a new connection
    this.inbox = null; // every private message up to it was seen; null before the first welcome
    this.above = new Set(); // private offsets seen above inbox.offset
    this.pending = new Map(); // id -> frame sent and not acknowledged, in send order
    this.seen = new Set(); // keys of the logged messages shown
    this.gaps = new Map(); // room -> { after, upTo, epoch }: what a join could not replay
  }

  newId(kind) {
    return `${this.prefix}-${kind}${++this.seq}`;
  }

  /** join returns the frame that joins room and shows its recent history. */
  join(room) {
    this.joined.add(room);
    this.rooms.delete(room); // a new join shows the history again; seen keeps out what is on screen
    return this.joinFrame(room);
  }

  joinFrame(room) {
    const id = this.newId('j');
    this.joinIds.set(id, room);
    const pos = this.rooms.get(room);
    return pos ? { type: 'join_room', id, room, since: { ...pos } } : { type: 'join_room', id, room, history: this.history };
  }

  /** leave forgets room: it is not joined again on a new connection. */
  leave(room) {
    this.joined.delete(room);
  }

  /** track gives a message or private message frame an id and keeps it until its ack. */
  track(frame) {
    if (!frame.id) frame.id = this.newId('m');
    this.pending.set(frame.id, frame);
    return frame;
  }

  /**
   * resume returns, for a new connection once its welcome was observed, the
   * frames that pick up where the last one ended: the rooms joined again
   * from their last positions, the private messages missed, and every frame
   * not acknowledged, with its id.
   */
  resume() {
    const frames = [...this.joined].map((room) => this.joinFrame(room));
    if (this.inbox) frames.push({ type: 'recover_private', since: { ...this.inbox } });
    return frames.concat([...this.pending.values()]);
  }

  /**
   * observe updates what was seen from a server frame and returns whether
   * to show it: false for a logged message already shown.
   */
  observe(frame) {
    switch (frame.type) {
      case 'system':
        if (!this.inbox) this.inbox = { offset: frame.inbox?.offset ?? 0, epoch: frame.inbox?.epoch ?? '' };
        return true;
      case 'ack':
        this.pending.delete(frame.id);
        return true;
      case 'error':
        if (RETRY.has(frame.code)) return true; // not carried out: send again later
        this.pending.delete(frame.id); // refused for good
        if (this.joinIds.has(frame.id) && frame.code !== 'already_in_room') {
          this.joined.delete(this.joinIds.get(frame.id)); // a refused join is not tried again
          this.joinIds.delete(frame.id);
        }
        return true;
      case 'room_joined':
        return this.roomJoined(frame);
      case 'message':
        return this.message(frame);
      case 'private_message':
        return this.privateMessage(frame);
      case 'private_recovered':
        if (!frame.recovered) {
          this.inbox = { offset: frame.offset ?? 0, epoch: frame.epoch ?? '' };
          this.advanceInbox();
        }
        return true;
    }
    return true;
  }

  roomJoined(frame) {
    const asked = this.joinIds.get(frame.id);
    if (asked === undefined) return true;
    this.joinIds.delete(frame.id);
    // The server's spelling (NFC) names the room in its messages: keep it.
    const room = frame.room || asked;
    if (room !== asked && this.joined.delete(asked)) this.joined.add(room);
    const at = { offset: frame.offset ?? 0, epoch: frame.epoch ?? '' };
    const before = this.rooms.get(room);
    if (frame.recovered === false) {
      const after = before && before.epoch === at.epoch ? before.offset : 0;
      this.gaps.set(room, { after, upTo: at.offset, epoch: at.epoch });
      this.rooms.set(room, at);
    } else if (!before) {
      this.rooms.set(room, { offset: at.offset - Math.min(at.offset, this.history), epoch: at.epoch });
    }
    return true;
  }

  message(frame) {
    if (!frame.room || !frame.offset) return true;
    const k = key(frame.room, frame.epoch, frame.offset);
    if (this.seen.has(k)) return false;
    this.seen.add(k);
    const pos = this.rooms.get(frame.room);
    if (!pos || pos.epoch !== frame.epoch || frame.offset > pos.offset) {
      this.rooms.set(frame.room, { offset: frame.offset, epoch: frame.epoch });
    }
    return true;
  }

  privateMessage(frame) {
    if (!frame.offset) return true;
    const k = key(INBOX, frame.epoch, frame.offset);
    if (this.seen.has(k)) return false;
    this.seen.add(k);
    if (!this.inbox || (this.inbox.epoch !== frame.epoch && this.inbox.epoch !== '')) {
      this.inbox = { offset: frame.offset - 1, epoch: frame.epoch }; // a new log starts
      this.above.clear();
    }
    this.inbox.epoch = frame.epoch;
    if (frame.offset > this.inbox.offset) this.above.add(frame.offset);
    this.advanceInbox();
    return true;
  }

  /** advanceInbox moves the inbox's position over an unbroken run of offsets seen. */
  advanceInbox() {
    for (const off of this.above) if (off <= this.inbox.offset) this.above.delete(off);
    while (this.above.delete(this.inbox.offset + 1)) this.inbox.offset++;
  }

  /**
   * takeGap returns, once, what a join with recovered false could not
   * replay in room ({ after, upTo, epoch }), or null: the page reloads it
   * through the history API (historyFrames).
   */
  takeGap(room) {
    const gap = this.gaps.get(room) ?? null;
    this.gaps.delete(room);
    return gap;
  }
}

/**
 * historyFrames fetches room's history after offset after (GET
 * /api/v1/websocket/rooms/{room}/history) and returns its messages up to
 * upTo as message frames, oldest first. Offsets come as JSON strings there.
 */
export async function historyFrames(room, { after = 0, upTo = Infinity, epoch } = {}, token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const url = `/api/v1/websocket/rooms/${encodeURIComponent(room)}/history?since=${after}`;
  const res = await fetch(url, { headers });
  if (!res.ok) throw new Error(`history of ${room}: HTTP ${res.status}`);
  const data = await res.json();
  if (epoch !== undefined && data.epoch !== epoch) return []; // the log started again: what was missing is gone
  return (data.messages || [])
    .map((m) => ({
      type: 'message',
      room: data.room || room,
      epoch: data.epoch,
      offset: Number(m.offset),
      sender: m.sender,
      user_id: m.user_id,
      message: m.message,
      timestamp: m.timestamp,
    }))
    .filter((f) => f.offset <= upTo);
}

/**
 * placeByOffset moves line, just appended to list for frame, before the
 * first line of the same log and epoch with a larger offset: a replay or a
 * reload can come after live messages that follow it.
 */
export function placeByOffset(list, line, frame) {
  if (!frame.offset || !line) return;
  const log = frame.type === 'private_message' ? INBOX : frame.room;
  line.dataset.log = log;
  line.dataset.epoch = frame.epoch ?? '';
  line.dataset.offset = String(frame.offset);
  for (const other of list.children) {
    if (other === line) return;
    if (other.dataset.log === log && other.dataset.epoch === line.dataset.epoch && Number(other.dataset.offset) > frame.offset) {
      list.insertBefore(line, other);
      return;
    }
  }
}
