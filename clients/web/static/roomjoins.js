// Where one room's joins stand on a page's current connection, for
// recovery.js. Plain ES module.

/** Where the connection stands in a room, as the page knows it (Go: roomPosition's in and live). */
const OUT = 'out'; // not let in on the connection (or it ended), or taken out since (a kick)
const IN = 'in'; // let in (a join accepted), then joined again: messages to it wait for that join
const LIVE = 'live'; // let in, and not joined again since: messages to it go at once

/**
 * RoomJoins is where one room's joins stand on the current connection (Go:
 * roomPosition's in, live, asked and due): whether the server let the
 * connection in, the join frames sent and not answered, the one of them
 * refused for now and due again, and the refusal for good of a join of it.
 * A join given up (not to be sent again) is no longer asked: no answer to
 * it is to come. Every fact of the connection about a room that a Recovery
 * uses is read from it.
 */
export class RoomJoins {
  #state = OUT;
  #asked = new Map(); // id -> join frame sent on the connection: its answer is to come, or it is due
  #due = null; // the join of asked refused for now, to send again (resend); null if none
  #resent = new WeakSet(); // joins sent again after a refusal for now (resend)
  #refusal = null; // { code, message } of a join refused for good, until joined again or accepted

  /** sent notes the join frame sent on the connection: its answer is to come. */
  sent(frame) {
    this.#asked.set(frame.id, frame);
  }

  /** join returns the join frame with id sent on the connection, to be answered or due; undefined if none. */
  join(id) {
    return this.#asked.get(id);
  }

  /** answered notes that the join with id was answered, or given up: no answer to it is to come. */
  answered(id) {
    this.#asked.delete(id);
  }

  /** live reports whether the connection is in the room and not joined again since: messages to it go at once. */
  live() {
    return this.#state === LIVE;
  }

  /**
   * mayBeIn reports whether the server may hold the connection in the room:
   * a join of it was accepted on it (even if joined again since), or one is
   * still to be answered.
   */
  mayBeIn() {
    return this.#state !== OUT || this.toBeAnswered();
  }

  /** toBeAnswered reports whether a join was sent and its answer is still to come: not the one due. */
  toBeAnswered() {
    return [...this.#asked.values()].some((j) => j !== this.#due);
  }

  /**
   * retrying reports whether a join was refused for now and is not given
   * up on: it is due again, or was sent again and is still to be answered.
   */
  retrying() {
    return this.#due !== null || [...this.#asked.values()].some((j) => this.#resent.has(j));
  }

  /** refusal returns the { code, message } of a join refused for good, or null. */
  refusal() {
    return this.#refusal;
  }

  /** due reports whether a join was refused for now and is to send again (resend). */
  due() {
    return this.#due !== null;
  }

  /** setDue notes join refused for now: due again; the join due before it is given up (no answer to come). */
  setDue(join) {
    if (this.#due !== join) this.#dropDue();
    this.#due = join;
  }

  /** #dropDue gives up the join due: it will not be sent again, so no answer to it is to come. */
  #dropDue() {
    if (this.#due) this.answered(this.#due.id);
    this.#due = null;
  }

  /** resend returns the join due, to send again now: its answer is to come. */
  resend() {
    const join = this.#due;
    this.#resent.add(join);
    this.#due = null;
    return join;
  }

  /** joinAgain notes a new join of the room: messages wait for it, and what was due or refused is given up. */
  joinAgain() {
    if (this.#state === LIVE) this.#state = IN;
    this.#dropDue();
    this.#refusal = null;
  }

  /** accepted notes that a join was accepted: the connection is in the room, nothing due or refused. */
  accepted() {
    this.#state = LIVE;
    this.#dropDue();
    this.#refusal = null;
  }

  /**
   * refusedForGood notes that the join with the error frame's id was refused
   * for good: answered, nothing due, and its code and text kept (refusal).
   */
  refusedForGood({ id, code, message }) {
    this.answered(id);
    this.#dropDue();
    this.#refusal = { code, message };
  }

  /**
   * kicked notes that an administrator took the connection out of the room:
   * it is in it no more. It reports whether a join of it is still to be
   * answered (toBeAnswered): that join reached the server after the kick,
   * and its answer decides (Go: kickedFrom). If none is, the join due is
   * given up.
   */
  kicked() {
    this.#state = OUT;
    if (this.toBeAnswered()) return true;
    this.#dropDue();
    return false;
  }

  /**
   * closed notes that the connection ended: it is in the room no more, and
   * the join due is given up. The joins sent on it are kept until the next
   * welcome (resume), which forgets them.
   */
  closed() {
    this.#state = OUT;
    this.#dropDue();
  }
}
