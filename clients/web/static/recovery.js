// Recovery for Tertulia's pages: what a page remembers so that a new
// connection picks up exactly where the last one ended (DESIGN.md, "History,
// acknowledgements, recovery"). It knows no WebSocket: the page feeds it
// every frame (observe) and sends what it returns. Plain ES module.

import { RoomJoins } from './roomjoins.js';

/** logKey names a room's log, or the user's inbox. */
const INBOX = '\u0000inbox';

/** RETRY are the error codes of a frame not carried out now, worth sending again later. */
export const RETRY = new Set(['unavailable', 'rate_limited']);

/**
 * RETRY_AT_LEAST is the shortest wait, in ms, before a page sends again
 * what was refused for now: the server forgets a run of rate_limited
 * refusals after a second without one. It is the first round's wait too,
 * chat.js's backoff(0) being below it.
 */
export const RETRY_AT_LEAST = 1000;

/** key identifies one logged message: its log, epoch and offset. */
function key(log, epoch, offset) {
  return `${log}\n${epoch}\n${offset}`;
}

/**
 * Recovery keeps, across connections: the last offset and epoch seen in
 * each room, the position of the private inbox, the frames with an id not
 * yet acknowledged, and which logged messages were shown (a message is
 * never rendered twice, whichever way it came: live, replayed, reloaded).
 *
 * A message to a room joined but not yet on the current connection (its
 * join, or its join again after a reconnect, sent and not answered, or
 * refused for now and due again) is not sent: the server would refuse it
 * with not_in_room. It waits for the room's room_joined and then goes, in
 * send order (takeReady). A join refused for now (unavailable,
 * rate_limited) is due again (retryFrames, after the page's backoff); a
 * join refused for good (banned, forbidden, ...) fails the messages waiting
 * for it with its code and text (takeFailed), and a not_in_room answering a
 * message sent to that room later on the connection carries them too,
 * until the room is joined again or left. What was refused for now is of
 * its connection only: closed forgets it, resume sends everything again.
 * A kick out of a room (our own room_left, kicked and yours: the copies
 * about our user's other sessions, not marked yours, change nothing) ends
 * its membership as a leave would, so a new connection does not join it again.
 */
export class Recovery {
  /** @param {{history?: number}} o history: how many past messages a join shows */
  constructor({ history = 50 } = {}) {
    this.history = history;
    this.prefix = Math.random().toString(36).slice(2, 10);
    this.seq = 0;
    this.rooms = new Map(); // room -> { offset, epoch } of the last message seen
    this.leaveIds = new Set(); // ids of the leave_room frames not yet answered
    this.joined = new Set(); // rooms to join again on a new connection, in join order
    this.inbox = null; // every private message up to it was seen; null before the first welcome
    this.above = new Set(); // private offsets seen above inbox.offset
    this.recovering = null; // the recover_private frame sent and not answered
    this.pending = new Map(); // id -> frame sent and not acknowledged, in send order
    this.seen = new Set(); // keys of the logged messages shown
    this.gaps = new Map(); // room -> { after, upTo, epoch }: what a join could not replay
    // Of the current connection only (resume starts them again):
    this.joins = new Map(); // room -> RoomJoins
    this.recoverDue = false; // recovering was refused for now: to send again
    this.waiting = new Set(); // ids of pending messages not sent on it: behind their room's join
    this.ready = []; // messages whose room's join was accepted: to send (takeReady)
    this.failed = []; // error frames for the messages a refused join failed (takeFailed)
  }

  newId(kind) {
    return `${this.prefix}-${kind}${++this.seq}`;
  }

  /** roomJoins returns where room's joins stand on the connection, made if new. */
  roomJoins(room) {
    let joins = this.joins.get(room);
    if (!joins) this.joins.set(room, (joins = new RoomJoins()));
    return joins;
  }

  /**
   * joinOf returns the RoomJoins holding the join frame with id (sent on
   * the connection: to be answered, or due), and that frame; [] if none.
   */
  joinOf(id) {
    for (const joins of this.joins.values()) {
      const join = joins.join(id);
      if (join) return [joins, join];
    }
    return [];
  }

  /** join returns the frame that joins room and shows its recent history. */
  join(room) {
    this.joined.add(room);
    this.rooms.delete(room); // a new join shows the history again; seen keeps out what is on screen
    this.roomJoins(room).joinAgain();
    return this.joinFrame(room);
  }

  /** joinFrame returns a new join_room frame of room, noted as sent on the connection. */
  joinFrame(room) {
    const id = this.newId('j');
    const pos = this.rooms.get(room);
    const frame = pos ? { type: 'join_room', id, room, since: { ...pos } } : { type: 'join_room', id, room, history: this.history };
    this.roomJoins(room).sent(frame);
    return frame;
  }

  /**
   * leave forgets room: it is not joined again on a new connection. The
   * messages that waited for a join on its way go now (takeReady), before
   * the leave_room: the server answers them. If that join was refused for
   * now (due again, or sent again and not answered yet: retrying), they
   * fail here instead (takeFailed): sent behind it, they would likely be
   * refused with it again, each with a bare not_in_room. It returns the
   * leave_room to send, with an id, if the server may hold the connection
   * in room (mayBeIn): a join of it was accepted on it (even if joined
   * again since, and that join refused for now), or one is still to be
   * answered; else null. Not if the only join of it was refused for now
   * and is due: the server would answer the leave_room with a bare
   * not_in_room too. A not_in_room that answers the leave_room (a join on
   * its way refused after all) is not shown (observe). The answers to the
   * joins before it are moot: the server carries out the leave after them,
   * so they are forgotten.
   */
  leave(room) {
    const joins = this.joins.get(room);
    const mayBeIn = !!joins?.mayBeIn();
    if (joins?.retrying()) {
      this.fail(room, { code: 'not_in_room', message: `left room "${room}" before its join was accepted`, timestamp: new Date().toISOString() });
    }
    this.joined.delete(room);
    this.joins.delete(room);
    this.flush();
    if (!mayBeIn) return null;
    const frame = { type: 'leave_room', id: this.newId('l'), room };
    this.leaveIds.add(frame.id);
    return frame;
  }

  /**
   * closed notes that the connection ended: no room's join is accepted on
   * it any more and no join is due on it. Until the next welcome's resume,
   * retryFrames sends no message to a joined room: on a new connection it
   * would go ahead of its room's join and be refused with not_in_room.
   */
  closed() {
    for (const joins of this.joins.values()) joins.closed();
    this.recoverDue = false;
  }

  /** track gives a message or private message frame an id and keeps it until its ack. */
  track(frame) {
    if (!frame.id) frame.id = this.newId('m');
    this.pending.set(frame.id, frame);
    return frame;
  }

  /**
   * submit tracks frame and returns it to send now, or null if it waits
   * behind its room's join: it goes once that join is accepted (takeReady).
   */
  submit(frame) {
    this.track(frame);
    if (!this.behindJoin(frame)) return frame;
    this.waiting.add(frame.id);
    return null;
  }

  /**
   * behindJoin reports whether frame is a message to a room joined but not
   * yet on the current connection: the server would refuse it with
   * not_in_room.
   */
  behindJoin(frame) {
    return frame.type === 'message' && !!frame.room && this.joined.has(frame.room) && !this.joins.get(frame.room)?.live();
  }

  /**
   * takeReady returns, once, the messages whose room's join was accepted
   * (or that room left) since: to send now, in send order.
   */
  takeReady() {
    const ready = this.ready;
    this.ready = [];
    return ready;
  }

  /**
   * takeFailed returns, once, an error frame for each message that waited
   * for a join refused for good since: its id, the join's code and text.
   */
  takeFailed() {
    const failed = this.failed;
    this.failed = [];
    return failed;
  }

  /**
   * refusedForNow reports whether frame, observed, refused for now a frame
   * to send again (retryFrames): a message awaiting its ack, the join of a
   * room joined (sendAgain forgets that of a room left), or the
   * recover_private.
   */
  refusedForNow(frame) {
    if (frame.type !== 'error' || !RETRY.has(frame.code) || !frame.id) return false;
    return this.pending.has(frame.id) || this.joinOf(frame.id).length > 0 || this.recovering?.id === frame.id;
  }

  /**
   * retryFrames returns the frames to send again after a refusal for now:
   * the joins refused for now, in join order (Go: nextDue), the
   * recover_private if it was, then every message awaiting its ack that is
   * not behind its room's join.
   */
  retryFrames() {
    const frames = [];
    for (const room of this.joined) {
      const joins = this.joins.get(room);
      if (joins?.due()) frames.push(joins.resend());
    }
    if (this.recoverDue) frames.push(this.recovering);
    this.recoverDue = false;
    return frames.concat([...this.pending.values()].filter((f) => !this.waiting.has(f.id) && !this.behindJoin(f)));
  }

  /**
   * resume returns, for a new connection once its welcome was observed, the
   * frames that pick up where the last one ended: the rooms joined again
   * from their last positions, the private messages missed (a
   * recover_private with an id, kept until answered), and every frame
   * not acknowledged, with its id, but for the messages to a room joined
   * again: those go once its room_joined comes (takeReady).
   */
  resume() {
    // The last connection's joins and leaves are answered on it or never:
    // on the new one no room is live, no join due or refused.
    this.joins.clear();
    this.leaveIds.clear();
    this.recoverDue = false;
    this.waiting.clear();
    this.ready = [];
    const frames = [...this.joined].map((room) => this.joinFrame(room));
    this.recovering = this.inbox ? { type: 'recover_private', id: this.newId('r'), since: { ...this.inbox } } : null;
    if (this.recovering) frames.push(this.recovering);
    for (const f of this.pending.values()) {
      if (this.behindJoin(f)) this.waiting.add(f.id);
      else frames.push(f);
    }
    return frames;
  }

  /** flush makes ready, in send order, the waiting messages no longer behind their room's join. */
  flush() {
    for (const f of this.pending.values()) {
      if (this.waiting.has(f.id) && !this.behindJoin(f)) {
        this.waiting.delete(f.id);
        this.ready.push(f);
      }
    }
  }

  /**
   * observe updates what was seen from a server frame and returns whether
   * to show it: false for a logged message already shown, and for a
   * not_in_room answering a leave_room (see leave).
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
        if (this.leaveIds.delete(frame.id)) return frame.code !== 'not_in_room';
        this.error(frame);
        return true;
      case 'room_joined':
        return this.roomJoined(frame);
      case 'room_left':
        this.leaveIds.delete(frame.id);
        if (frame.kicked && frame.yours && frame.room) this.kicked(frame);
        return true;
      case 'message':
        return this.message(frame);
      case 'private_message':
        return this.privateMessage(frame);
      case 'private_recovered':
        this.recovering = null;
        this.recoverDue = false;
        if (!frame.recovered) {
          this.inbox = { offset: frame.offset ?? 0, epoch: frame.epoch ?? '' };
          this.advanceInbox();
        }
        return true;
    }
    return true;
  }

  /**
   * error notes what an error frame refused. Refused for now (RETRY), a
   * frame is to send again (sendAgain); refused for good, it is not
   * (refusedForGood).
   */
  error(frame) {
    if (!RETRY.has(frame.code)) this.refusedForGood(frame);
    else this.sendAgain(frame.id);
  }

  /**
   * sendAgain notes that the frame with id was refused for now: the
   * recover_private, or a join of a room still joined, is due again
   * (retryFrames); a message awaiting its ack goes again anyway. A join of
   * a room left is given up.
   */
  sendAgain(id) {
    if (!id) return;
    if (this.recovering?.id === id) {
      this.recoverDue = true;
      return;
    }
    const [joins, join] = this.joinOf(id);
    if (!join) return;
    if (!this.joined.has(join.room)) joins.answered(id);
    else joins.setDue(join);
  }

  /**
   * refusedForGood notes an error frame that refused its frame for good. A
   * not_in_room answering a message to a room whose join was refused for
   * good takes that refusal's code and text. A join refused for good
   * (already_in_room is no refusal: the room is joined) is not tried again,
   * and the messages waiting for it fail with its error, which gets its
   * room if it has none.
   */
  refusedForGood(frame) {
    if (frame.id && this.recovering?.id === frame.id) {
      this.recovering = null;
      return;
    }
    const sent = this.pending.get(frame.id);
    const refusal = sent?.room !== undefined && this.joins.get(sent.room)?.refusal();
    if (frame.code === 'not_in_room' && refusal) Object.assign(frame, refusal);
    this.pending.delete(frame.id);
    const [joins, join] = this.joinOf(frame.id);
    if (!join) return;
    if (frame.code === 'already_in_room') {
      joins.answered(frame.id);
      this.accepted(join.room);
      return;
    }
    this.joined.delete(join.room);
    joins.refusedForGood(frame);
    if (!frame.room) frame.room = join.room;
    this.fail(join.room, frame);
  }

  /**
   * kicked notes our own room_left with kicked and yours set: an
   * administrator took this session (and every other of our user) out of
   * the room; the copies about the other sessions are not marked yours. It
   * is not joined again on a new connection (that would undo the kick), and
   * the messages waiting for its join fail with code not_in_room, saying
   * so. But a join of it still to be answered (toBeAnswered) reached the
   * server after the kick (the answer to one before would have come
   * first): the room stays joined, its messages wait for it.
   */
  kicked(frame) {
    const room = frame.room;
    const joins = this.joins.get(room);
    if (joins?.kicked() && this.joined.has(room)) return;
    this.joined.delete(room);
    this.fail(room, { code: 'not_in_room', message: `kicked from room "${room}"`, timestamp: frame.timestamp });
  }

  /** fail fails the messages waiting for room's join with the error { code, message, timestamp } (takeFailed). */
  fail(room, { code, message, timestamp }) {
    for (const f of this.pending.values()) {
      if (this.waiting.has(f.id) && f.room === room) {
        this.waiting.delete(f.id);
        this.pending.delete(f.id);
        this.failed.push({ type: 'error', id: f.id, room, code, message, timestamp });
      }
    }
  }

  /** accepted notes that room's join was accepted on the connection: its waiting messages are ready. */
  accepted(room) {
    this.roomJoins(room).accepted();
    this.flush();
  }

  roomJoined(frame) {
    const [joins, join] = this.joinOf(frame.id);
    if (!join) return true;
    joins.answered(frame.id);
    const asked = join.room;
    // The server's spelling (NFC) names the room in its messages: keep it.
    const room = frame.room || asked;
    if (room !== asked && this.joined.delete(asked)) this.joined.add(room);
    this.accepted(room);
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
