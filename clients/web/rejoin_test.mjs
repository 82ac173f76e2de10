// Drives the rooms page in real headless Chromium through a reconnect whose
// joins again are refused. Run by rejoin_test.go, which answers DONE on
// stdin to each of SWITCH (the node replaced, alice banned from tapas on the
// next one, the pages cut off meanwhile), UP (the pages let through again),
// PAUSE and RESUME (the next node's Redis stopped and continued). Prints OK
// when every check passed; any failure exits non-zero with the reason.
//
// Environment: BASE_URL (through the proxy), DIRECT_URL (the node itself),
// PROFILE (a fresh Chromium user-data-dir), CHROMIUM (path).
import { ask as askFor, check, connected, join, login, run, say, seeLine, step } from './pages_test.mjs';

const WAIT = 20_000; // every wait for the page is bounded by this: a refused join waits for Redis's timeouts

/** ask has rejoin_test.go do what, and waits for it to be done. */
const ask = (what) => askFor(what, 'DONE');

/** texts returns the texts of the page's lines of type. */
function texts(page, type) {
  return page.$$eval(`#messages .line[data-type="${type}"] .text`, (els) => els.map((el) => el.textContent));
}

/** see waits until the page has a line of type whose text is text, or ends with it if suffix. */
function see(page, who, type, text, suffix = false) {
  return seeLine(page, who, type, text, '', { suffix, timeout: WAIT });
}

run(async (context) => {
  // Carol's frames to the server pass through here: while gate is set,
  // a join_room (and all after it, in order) waits for it, so that her
  // join again reaches the next node only once its Redis is paused.
  let gate = null;
  let joinHeld;
  const held = new Promise((r) => (joinHeld = r));
  const carolRoute = (ws) => {
    const server = ws.connectToServer();
    let queue = Promise.resolve();
    ws.onMessage((m) => {
      queue = queue.then(async () => {
        if (gate && String(m).includes('"join_room"')) {
          joinHeld();
          await gate;
        }
        server.send(m);
      });
    });
  };

  step('alice in tapas and carol in copas each have a message refused for now when the node stops');
  const base = process.env.BASE_URL;
  const alice = await login(context, base, 'alice');
  const carol = await login(context, base, 'carol', { before: (page) => page.routeWebSocket(/\/api\/v1\/ws/, carolRoute) });
  await join(alice, 'tapas');
  await join(carol, 'copas');
  for (const [page, who] of [[alice, 'alice'], [carol, 'carol']]) {
    await say(page, `${who} cero`); // the one message the node lets through
    await see(page, who, 'message', `${who} cero`);
  }
  await say(alice, 'uno');
  await alice.fill('#privateUserInput', 'bob');
  await alice.fill('#privateMessageInput', 'psst');
  await alice.click('#sendPrivateButton');
  await say(carol, 'dos');
  for (const [page, who] of [[alice, 'alice'], [carol, 'carol']]) {
    await see(page, who, 'error', '(rate_limited)', true);
  }

  step('the node is replaced; the next one bans alice from tapas; bob, on it, joins copas');
  let release;
  gate = new Promise((r) => (release = r));
  await ask('SWITCH');
  const bob = await login(context, process.env.DIRECT_URL, 'bob');
  await join(bob, 'copas');
  await ask('UP');

  step('alice\'s join again is refused for good: her message fails with the ban, not not_in_room; her private message goes');
  await connected(alice, 'alice', WAIT);
  await see(bob, 'bob', 'private_message', 'psst');
  await alice.waitForFunction(
    () =>
      [...document.querySelectorAll('#messages .line[data-type="error"] .text')].filter((el) => el.textContent.endsWith('(banned)'))
        .length >= 2,
    null,
    { timeout: WAIT },
  ).catch(() => {
    throw new Error('alice did not see her join and her message refused as banned');
  });
  // A marker: any answer to what came before it has come.
  await alice.fill('#privateUserInput', 'bob');
  await alice.fill('#privateMessageInput', 'marker');
  await alice.click('#sendPrivateButton');
  await see(bob, 'bob', 'private_message', 'marker');
  const aliceErrors = await texts(alice, 'error');
  const banned = aliceErrors.filter((t) => t.endsWith('(banned)'));
  check(banned.length === 2, `alice sees the ban twice, her join's and her message's (got ${aliceErrors.join(' | ')})`);
  check(banned.every((t) => t.includes('banned from room "tapas"')), `the ban's text is shown (got ${banned.join(' | ')})`);
  check(!aliceErrors.some((t) => t.includes('not_in_room')), `alice sees no not_in_room (got ${aliceErrors.join(' | ')})`);
  check((await alice.textContent('#currentRoom')) === 'none', 'alice\'s page no longer shows her in tapas');
  check((await texts(bob, 'private_message')).filter((t) => t === 'psst').length === 1, 'bob gets psst once');

  step('carol\'s join again reaches the next node while its Redis is paused: refused for now');
  await held;
  await ask('PAUSE');
  gate = null;
  release();
  // Her join's refusal: her recover_private can be refused for now too.
  await see(carol, 'carol', 'error', 'could not join room "copas": the broker is unavailable (unavailable)');
  await ask('RESUME');

  step('carol\'s join goes again and is accepted; her message reaches bob once, in order');
  await see(bob, 'bob', 'message', 'dos');
  await say(carol, 'tres');
  await see(bob, 'bob', 'message', 'tres');
  const bobSaw = (await texts(bob, 'message')).filter((t) => t === 'dos' || t === 'tres');
  check(bobSaw.join('|') === 'dos|tres', `bob sees dos then tres, once each (got ${bobSaw.join(', ')})`);
  const carolErrors = await texts(carol, 'error');
  check(!carolErrors.some((t) => t.includes('not_in_room')), `carol sees no not_in_room (got ${carolErrors.join(' | ')})`);
  check((await carol.textContent('#currentRoom')) === 'copas', 'carol is in copas');
});
