// Drives the rooms page in real headless Chromium while the node's Redis is
// paused. Run by outage_test.go, which answers DONE on stdin to each of
// PAUSE and RESUME (the node's redis-server stopped with SIGSTOP, continued
// with SIGCONT), CUT (carol's connections cut, new ones refused) and UP
// (let through again). Prints OK when every check passed; any failure exits
// non-zero with the reason.
//
// Environment: BASE_URL (through the proxy), DIRECT_URL (the node itself),
// PROFILE (a fresh Chromium user-data-dir), CHROMIUM (path).
import { ask as askFor, check, connected, join, login, run, say, seeLine, step } from './pages_test.mjs';
import { RETRY_AT_LEAST } from './static/recovery.js';

const WAIT = 30_000; // every wait for the page is bounded by this: Redis's timeouts, then the page's backoff

/** ask has outage_test.go do what, and waits for it to be done. */
const ask = (what) => askFor(what, 'DONE');

/** see waits until the page has a line of type whose text is text. */
function see(page, who, type, text) {
  return seeLine(page, who, type, text, '', { timeout: WAIT });
}

/** texts returns the texts of the page's lines of type. */
function texts(page, type) {
  return page.$$eval(`#messages .line[data-type="${type}"] .text`, (els) => els.map((el) => el.textContent));
}

/** seeTimes waits until the page has at least n lines of type whose text is text (any text if null). */
async function seeTimes(page, who, type, text, n) {
  await page
    .waitForFunction(
      ([type, text, n]) =>
        [...document.querySelectorAll(`#messages .line[data-type="${type}"] .text`)].filter((el) => text === null || el.textContent === text)
          .length >= n,
      [type, text, n],
      { timeout: WAIT },
    )
    .catch(async () => {
      throw new Error(`${who} did not see ${type} "${text}" ${n} times; it shows: ${(await texts(page, type)).join(' | ')}`);
    });
}

/** within resolves as promise does, or fails naming what if that takes longer than WAIT. */
function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${WAIT} ms`)), WAIT)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Wire watches what carol's page sends (routeWebSocket): every frame, in the
 * order it reaches the server, with the number of its socket. While hold is
 * set, a frame of that type (and all after it, in order) waits for release.
 */
class Wire {
  constructor() {
    this.frames = []; // [socket number, frame] as forwarded
    this.sockets = 0; // sockets the page opened
    this.gate = null;
  }

  /** route is the page's routeWebSocket handler. */
  route = (ws) => {
    const socket = ++this.sockets;
    const server = ws.connectToServer();
    let queue = Promise.resolve();
    ws.onMessage((m) => {
      queue = queue.then(async () => {
        const frame = JSON.parse(String(m));
        if (this.gate && frame.type === this.gate.type) {
          this.gate.reached(frame);
          await this.gate.open;
        }
        server.send(m);
        this.frames.push([socket, frame]);
      });
    });
  };

  /** hold makes frames of type wait from now on: reached resolves with the first, release lets them go. */
  hold(type) {
    let reached, release;
    const first = new Promise((r) => (reached = r));
    this.gate = { type, reached, open: new Promise((r) => (release = r)) };
    return {
      reached: first,
      release: () => {
        this.gate = null;
        release();
      },
    };
  }

  /** sent returns the frames forwarded that match pred, as [socket number, frame]. */
  sent(pred) {
    return this.frames.filter(([, f]) => pred(f));
  }
}

run(async (context) => {
  // The pages' timers run on a clock the script can stop: while it is
  // stopped, a join refused for now stays due (its resend waits for the
  // page's timer), so that carol's leave lands in that state, not in a
  // resend's round trip.
  await context.clock.install();
  const wire = new Wire();
  const bob = await login(context, process.env.DIRECT_URL, 'bob');
  const carol = await login(context, process.env.BASE_URL, 'carol', { before: (page) => page.routeWebSocket(/\/api\/v1\/ws/, wire.route) });
  await join(bob, 'tapas');

  step('redis paused, carol joins tapas and types two messages: her join is refused for now');
  await ask('PAUSE');
  await context.clock.pauseAt((await carol.evaluate(() => Date.now())) + 5_000);
  await join(carol, 'tapas'); // on screen at once: what she types waits for the join
  await say(carol, 'uno');
  await say(carol, 'dos');
  const refusedJoin = 'could not join room "tapas": the broker is unavailable (unavailable)';
  await see(carol, 'carol', 'error', refusedJoin);

  step('a second later, by the page\'s clock, the join goes again and is refused again');
  await context.clock.runFor(RETRY_AT_LEAST); // the first round waits that long
  await seeTimes(carol, 'carol', 'error', refusedJoin, 2);

  step('carol leaves tapas with its join due: her messages fail on the page, saying why; nothing else is sent for tapas');
  await carol.click('#leaveRoomButton');
  const left = 'left room "tapas" before its join was accepted (not_in_room)';
  await seeTimes(carol, 'carol', 'error', left, 2);
  // A message to everyone, refused for now too: once its answer shows, so
  // have the answers to all the page sent before it, and it has sent them.
  await say(carol, 'fin');
  await see(carol, 'carol', 'error', 'message not sent: the broker is unavailable (unavailable)');
  check((await carol.textContent('#currentRoom')) === 'none', 'carol\'s page no longer shows her in tapas');
  const errors = await texts(carol, 'error');
  check(errors.filter((t) => t === left).length === 2, `carol sees each message fail once (got ${errors.join(' | ')})`);
  check(errors.filter((t) => t.endsWith('(not_in_room)')).length === 2, `carol sees no bare not_in_room (got ${errors.join(' | ')})`);
  const joins = wire.sent((f) => f.type === 'join_room' && f.room === 'tapas');
  check(joins.length === 2, `the join went twice, once per round of the page's clock (got ${joins.length})`);
  const typed = wire.sent((f) => f.type === 'message' && (f.message === 'uno' || f.message === 'dos'));
  check(typed.length === 0, `uno and dos never left carol's page (sent ${typed.length})`);
  check(wire.sent((f) => f.type === 'leave_room').length === 0, 'no leave_room for a room the server never let her in');

  step('carol joins copas and types tres: refused for now, the join goes again; she leaves copas before its answer');
  await join(carol, 'copas');
  await say(carol, 'tres');
  await see(carol, 'carol', 'error', 'could not join room "copas": the broker is unavailable (unavailable)');
  const resend = wire.hold('join_room'); // the join sent again, and what follows it, wait at the proxy
  let held = false;
  resend.reached.then(() => (held = true));
  for (let round = 0; !held; round++) {
    check(round < 30, 'the page sends the join of copas again');
    await context.clock.runFor(RETRY_AT_LEAST); // the page's backoff, a round at a time
  }
  await carol.click('#leaveRoomButton');
  const leftCopas = 'left room "copas" before its join was accepted (not_in_room)';
  await see(carol, 'carol', 'error', leftCopas);
  resend.release();
  // adios goes after the leave_room: once its refusal for now shows (with
  // fin's two), the leave_room's answer came, and its not_in_room is not shown.
  await say(carol, 'adios');
  await seeTimes(carol, 'carol', 'error', 'message not sent: the broker is unavailable (unavailable)', 3);
  const afterCopas = await texts(carol, 'error');
  check(afterCopas.filter((t) => t.endsWith('(not_in_room)')).length === 3, `carol sees no bare not_in_room (got ${afterCopas.join(' | ')})`);
  check(wire.sent((f) => f.type === 'message' && f.message === 'tres').length === 0, 'tres never left carol\'s page');
  const leaves = wire.sent((f) => f.type === 'leave_room');
  check(leaves.length === 1 && leaves[0][1].room === 'copas' && leaves[0][1].id, `one leave_room, of copas, with an id (sent ${JSON.stringify(leaves)})`);

  step('redis is back: fin, refused for now meanwhile, reaches bob; uno and dos never do');
  await ask('RESUME');
  await context.clock.resume();
  await see(bob, 'bob', 'message', 'fin');
  const bobSaw = await texts(bob, 'message');
  check(!bobSaw.includes('uno') && !bobSaw.includes('dos'), `bob sees neither uno nor dos (got ${bobSaw.join(' | ')})`);

  step('carol is cut off; bob sends her two private messages meanwhile');
  await ask('CUT');
  await carol.waitForSelector('#status:not([data-state="connected"])', { timeout: WAIT });
  for (const text of ['p1', 'p2']) {
    await bob.fill('#privateUserInput', 'carol');
    await bob.fill('#privateMessageInput', text);
    await bob.click('#sendPrivateButton');
  }
  await seeTimes(bob, 'bob', 'private_sent', null, 2); // each logged in her inbox

  step('carol is back; her recover_private reaches the node while redis is paused: refused for now');
  const recover = wire.hold('recover_private');
  await ask('UP');
  const heldId = (await within(recover.reached, "carol's new connection's recover_private")).id;
  await ask('PAUSE');
  recover.release();
  await connected(carol, 'carol', WAIT);
  await see(carol, 'carol', 'error', 'could not read the inbox: the broker is unavailable (unavailable)');

  step('redis is back: the page sends recover_private again and shows what bob said, once each, in order');
  await ask('RESUME');
  await see(carol, 'carol', 'private_message', 'p1');
  await see(carol, 'carol', 'private_message', 'p2');
  const privates = (await texts(carol, 'private_message')).filter((t) => t === 'p1' || t === 'p2');
  check(privates.join('|') === 'p1|p2', `carol sees p1 then p2, once each (got ${privates.join(', ')})`);
  const again = wire.sent((f) => f.type === 'recover_private' && f.id === heldId);
  check(again.length >= 2 && again.every(([socket]) => socket === again[0][0]), `the recover_private refused went again on its connection (sent ${JSON.stringify(again)})`);
});
