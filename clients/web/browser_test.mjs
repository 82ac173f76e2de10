// Drives Tertulia's pages in real headless Chromium. Run by browser_test.go,
// which starts the server and restarts it when this script prints RESTART
// (it answers RESTARTED on stdin). Prints OK when every check passed; any
// failure exits non-zero with the reason.
//
// Environment: BASE_URL (http://127.0.0.1:PORT), SHOTS (directory for
// screenshots), PROFILE (a fresh Chromium user-data-dir), CHROMIUM (path).
import path from 'node:path';
import { WAIT, ask, check, connected, join, login as loginAt, run, say, seeLine, step } from './pages_test.mjs';

const BASE = process.env.BASE_URL;
const SHOTS = process.env.SHOTS;
const XSS = '<img src=x onerror="window.pwned=1">';

/** The payloads of the WebSocket messages each page received, and sent, by page. */
const received = new Map();
const sentFrames = new Map();

/** A page logged in as user on rooms.html, its WebSocket messages kept in received. */
function login(context, user) {
  return loginAt(context, BASE, user, {
    before(page) {
      received.set(page, []);
      sentFrames.set(page, []);
      page.on('websocket', (ws) => {
        ws.on('framereceived', (f) => received.get(page).push(String(f.payload)));
        ws.on('framesent', (f) => sentFrames.get(page).push(String(f.payload)));
      });
    },
  });
}

/** sayAtOnce sends texts from page's message box in one task: faster than any answer. */
function sayAtOnce(page, texts) {
  return page.evaluate((texts) => {
    const input = document.getElementById('messageInput');
    for (const text of texts) {
      input.value = text;
      document.getElementById('sendButton').click();
    }
  }, texts);
}

async function seeUser(page, who, user) {
  await page.waitForSelector(`#users li[data-user="${user}"]`, { timeout: WAIT }).catch(() => {
    throw new Error(`${who} does not see ${user} online`);
  });
}

run(async (context) => {
  step('alice and bob log in through the test-token flow');
  const alice = await login(context, 'alice');
  const bob = await login(context, 'bob');

  step('each sees the other online');
  await seeUser(alice, 'alice', 'bob');
  await seeUser(bob, 'bob', 'alice');

  step('someone who comes online while the list loads stays in it');
  // Alice reconnects; the answer to her page's fetch of the online list is
  // taken at once but handed over only after carol has come online, so it
  // is older than the user_joined the page has already shown.
  let listTaken, release;
  const taken = new Promise((r) => (listTaken = r));
  const held = new Promise((r) => (release = r));
  await alice.route('**/api/v1/websocket/users', async (route) => {
    const response = await route.fetch();
    listTaken();
    await held;
    await route.fulfill({ response });
  });
  await alice.click('#disconnectButton');
  await alice.waitForSelector('#status[data-state="disconnected"]', { timeout: WAIT });
  await alice.click('#connectButton');
  await connected(alice, 'alice');
  await taken;
  const carol = await login(context, 'carol');
  await seeUser(alice, 'alice', 'carol');
  const answered = alice.waitForResponse('**/api/v1/websocket/users', { timeout: WAIT });
  release();
  await answered;
  const gone = await alice
    .waitForFunction(() => !document.querySelector('#users li[data-user="carol"]'), null, { timeout: 1000 })
    .then(() => true, () => false);
  check(!gone, 'carol stays in alice\'s online list after the older list arrives');
  await alice.unroute('**/api/v1/websocket/users');
  await seeUser(bob, 'bob', 'carol');

  step('a page that closes leaves the online list, and the others are told');
  await carol.close();
  await seeLine(bob, 'bob', 'user_left', 'carol left the chat');
  await bob.waitForSelector('#users li[data-user="carol"]', { state: 'detached', timeout: WAIT }).catch(async () => {
    throw new Error(`carol stays in bob's online list after her page closed (shows ${await bob.textContent('#users')})`);
  });

  step('both join room lounge and talk there');
  await join(alice, 'lounge');
  await join(bob, 'lounge');
  await say(alice, 'hello bob, this is the lounge');
  await seeLine(bob, 'bob', 'message', 'hello bob, this is the lounge', '[data-room="lounge"]');
  await say(bob, 'hi alice!');
  await seeLine(alice, 'alice', 'message', 'hi alice!', '[data-room="lounge"]');

  step('in a small room, bob sees alice leave it and join it again');
  await alice.click('#leaveRoomButton');
  await alice.waitForFunction(() => document.getElementById('currentRoom').textContent === 'none', null, { timeout: WAIT });
  await seeLine(bob, 'bob', 'room_left', 'alice left room lounge', '[data-room="lounge"]');
  await join(alice, 'lounge');
  await seeLine(bob, 'bob', 'room_joined', 'alice joined room lounge', '[data-room="lounge"]');

  step('private messages');
  await bob.fill('#privateUserInput', 'alice');
  await bob.fill('#privateMessageInput', 'just between us');
  await bob.click('#sendPrivateButton');
  await seeLine(alice, 'alice', 'private_message', 'just between us');
  const sent = await bob.waitForSelector('#messages .line[data-type="private_sent"]', { timeout: WAIT });
  check((await sent.textContent()).includes('alice'), 'bob is told his private message reached alice');
  await alice.fill('#privateUserInput', 'bob');
  await alice.fill('#privateMessageInput', 'agreed, bob');
  await alice.press('#privateMessageInput', 'Enter');
  await seeLine(bob, 'bob', 'private_message', 'agreed, bob');

  step('a message that is HTML shows as text');
  await say(alice, XSS);
  await seeLine(bob, 'bob', 'message', XSS);
  await seeLine(alice, 'alice', 'message', XSS);
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    check((await page.evaluate(() => window.pwned)) === undefined, `window.pwned stays undefined for ${who}`);
    check((await page.$$('#messages img')).length === 0, `no <img> element in ${who}'s messages`);
  }

  await alice.screenshot({ path: path.join(SHOTS, 'rooms-alice.png') });
  await bob.screenshot({ path: path.join(SHOTS, 'rooms-bob.png') });

  step('the server restarts; the pages reconnect by themselves');
  const joinsBefore = await bob.$$eval('#messages .line[data-type="room_joined"]', (els) => els.length);
  // Every close the pages note from now on, in order: a first try to
  // reconnect may find the old node gone and the new one not up yet (1006).
  for (const page of [alice, bob]) {
    await page.evaluate(() => {
      window.closes = [];
      new MutationObserver(() => window.closes.push(document.body.dataset.lastClose)).observe(document.body, {
        attributes: true,
        attributeFilter: ['data-last-close'],
      });
    });
  }
  await ask('RESTART', 'RESTARTED');
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    // The page may not even have noticed yet; it must end up connected.
    await page.waitForSelector('#status[data-state="reconnecting"], #status[data-state="connected"]', { timeout: WAIT });
    await connected(page, who);
  }
  await seeUser(alice, 'alice', 'bob');
  // The pages join their room again on their own.
  await bob.waitForFunction(
    (n) => document.querySelectorAll('#messages .line[data-type="room_joined"]').length > n,
    joinsBefore,
    { timeout: WAIT },
  );
  check((await bob.textContent('#currentRoom')) === 'lounge', 'bob is back in lounge');
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    const codes = await page.evaluate(() => window.closes);
    console.log(`${who}'s page noted the closes ${codes.join(', ')}`);
    check(codes[0] === '1012', `${who}'s page was closed with 1012 service restart (got ${codes.join(', ')})`);
  }
  for (let i = 0; ; i++) {
    // Bob's rejoin may land just after alice speaks: retry a few times.
    await say(alice, `back after the restart ${i}`);
    try {
      await seeLine(bob, 'bob', 'message', `back after the restart ${i}`, '[data-room="lounge"]');
      break;
    } catch (err) {
      if (i === 4) throw err;
    }
  }
  await alice.screenshot({ path: path.join(SHOTS, 'rooms-alice-after-restart.png') });

  step('the network drops; what is said meanwhile shows once each after the pages reconnect');
  await ask('CUT', 'CUT-DONE');
  const away = [0, 1, 2, 3, 4].map((i) => `while away ${i}`);
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    for (const text of away) await seeLine(page, who, 'message', text, '[data-room="lounge"]');
  }
  for (const i of [0, 1, 2]) await seeLine(alice, 'alice', 'private_message', `psst ${i}`);
  // A marker after the replay: a duplicate would have come before it.
  await say(alice, 'after the cut');
  await seeLine(bob, 'bob', 'message', 'after the cut', '[data-room="lounge"]');
  await seeLine(alice, 'alice', 'message', 'after the cut', '[data-room="lounge"]');
  for (const [who, page] of [['alice', alice], ['bob', bob]]) {
    const shown = await page.$$eval('#messages .line[data-type="message"] .text', (els) => els.map((el) => el.textContent));
    for (const text of [...away, 'after the cut', 'hi alice!']) {
      const n = shown.filter((t) => t === text).length;
      check(n === 1, `${who} shows "${text}" once (got ${n})`);
    }
    const order = shown.filter((t) => t.startsWith('while away'));
    check(order.join('|') === away.join('|'), `${who} shows them in order (got ${order.join(', ')})`);
  }
  const privates = await alice.$$eval('#messages .line[data-type="private_message"] .text', (els) => els.map((el) => el.textContent));
  for (const i of [0, 1, 2]) {
    const n = privates.filter((t) => t === `psst ${i}`).length;
    check(n === 1, `alice shows private "psst ${i}" once (got ${n})`);
  }

  step('a page joining a room shows its recent history');
  const erin = await login(context, 'erin');
  await join(erin, 'lounge');
  for (const text of [...away, 'after the cut']) await seeLine(erin, 'erin', 'message', text, '[data-room="lounge"]');
  await erin.close();

  step('the guest page (the seed simple chat), under both names');
  for (const name of ['index.html', 'websocket_test.html']) {
    const guest = await context.newPage();
    await guest.goto(`${BASE}/static/${name}`);
    await connected(guest, name);
    await seeLine(guest, name, 'system', 'Connected to the chat');
    await say(guest, `hola from ${name}`);
    await seeLine(guest, name, 'message', `hola from ${name}`);
    await seeLine(alice, 'alice', 'message', `hola from ${name}`);
    check(
      (await guest.getAttribute('#roomsLink', 'href')) === 'rooms.html',
      `${name} links to the rooms page`,
    );
    if (name === 'index.html') await guest.screenshot({ path: path.join(SHOTS, 'guest.png') });
    await guest.close();
  }
  step('a burst of messages comes several to a WebSocket message and shows whole, in order');
  const BURST = 30; // browser_test.go's burstSize
  const burst = [...Array(BURST).keys()].map((i) => `burst ${String(i).padStart(2, '0')}`);
  const mark = received.get(bob).length;
  await ask('BURST', 'BURST-DONE');
  for (const text of burst) await seeLine(bob, 'bob', 'message', text, '[data-room="lounge"]');
  const shownBurst = await bob.$$eval('#messages .line[data-type="message"] .text', (els) =>
    els.map((el) => el.textContent).filter((t) => t.startsWith('burst ')),
  );
  check(shownBurst.join('|') === burst.join('|'), `bob shows the burst once each, in order (got ${shownBurst.join(', ')})`);
  const carriers = received.get(bob).slice(mark).filter((p) => p.includes('"burst '));
  console.log(`bob got the ${BURST} messages in ${carriers.length} WebSocket messages`);
  check(carriers.length < BURST, `bob's page got the burst batched (${carriers.length} WebSocket messages for ${BURST})`);
  for (const p of carriers) {
    for (const line of p.split('\n')) JSON.parse(line); // each line one whole frame
  }

  step('a page that sends faster than its rate: what is refused as rate_limited goes again, and shows once each, in order');
  // 60 messages at once, past a connection's burst (40): the rest are
  // refused for now and resent by the page after its backoff.
  const FAST = 60;
  const fast = [...Array(FAST).keys()].map((i) => `fast ${String(i).padStart(2, '0')}`);
  await sayAtOnce(alice, fast);
  for (const text of fast) await seeLine(bob, 'bob', 'message', text, '[data-room="lounge"]');
  const shownFast = await bob.$$eval('#messages .line[data-type="message"] .text', (els) =>
    els.map((el) => el.textContent).filter((t) => t.startsWith('fast ')),
  );
  check(shownFast.join('|') === fast.join('|'), `bob shows alice's fast messages once each, in order (got ${shownFast.join(', ')})`);
  const refusedFast = received.get(alice).filter((p) => p.includes('"rate_limited"')).length;
  console.log(`alice's page was refused ${refusedFast} times as rate_limited`);
  check(refusedFast > 0, 'some of the fast messages were refused as rate_limited (else this step tests nothing)');

  step('what is typed right after a join goes to that room; joining it twice meanwhile keeps the page in it');
  await join(bob, 'patio');
  // One task each, so that no room_joined can come between the clicks.
  const joinAndSay = (page, room, texts) =>
    page.evaluate(
      ([room, texts]) => {
        for (const text of texts) {
          document.getElementById('roomInput').value = room;
          document.getElementById('joinRoomButton').click();
          document.getElementById('messageInput').value = text;
          document.getElementById('sendButton').click();
        }
      },
      [room, texts],
    );
  await joinAndSay(alice, 'patio', ['to the patio']);
  await seeLine(bob, 'bob', 'message', 'to the patio', '[data-room="patio"]');
  await joinAndSay(alice, 'lounge', ['back in the lounge', 'still in the lounge']);
  await seeLine(alice, 'alice', 'message', 'still in the lounge', '[data-room="lounge"]');
  await alice.waitForFunction(() => document.getElementById('currentRoom').textContent === 'lounge', null, { timeout: WAIT }).catch(async () => {
    throw new Error(`alice's page is not in the lounge after joining it twice (shows ${await alice.textContent('#currentRoom')})`);
  });
  const patioErrors = await alice.$$eval('#messages .line[data-type="error"] .text', (els) => els.map((el) => el.textContent));
  check(!patioErrors.some((t) => t.includes('not_in_room')), `alice sees no not_in_room (got ${patioErrors.join(' | ')})`);

  step('joining the room on screen again sends no join: the page is in it already');
  const joinsTo = (room) => sentFrames.get(alice).filter((p) => p.includes('"join_room"') && p.includes(`"${room}"`)).length;
  const loungeJoins = joinsTo('lounge');
  await join(alice, 'lounge');
  await say(alice, 'joined once');
  await seeLine(alice, 'alice', 'message', 'joined once', '[data-room="lounge"]');
  for (let i = 0; !sentFrames.get(alice).some((p) => p.includes('joined once')); i++) {
    check(i < WAIT / 50, 'alice\'s page sent "joined once"');
    await new Promise((r) => setTimeout(r, 50)); // framesent events come on their own
  }
  check(joinsTo('lounge') === loungeJoins, `alice's page sent no join of the lounge again (${joinsTo('lounge') - loungeJoins} sent)`);
  check((await alice.inputValue('#roomInput')) === '', 'the room box is cleared');
  const againErrors = await alice.$$eval('#messages .line[data-type="error"] .text', (els) => els.map((el) => el.textContent));
  check(!againErrors.some((t) => t.includes('already_in_room')), `alice sees no already_in_room (got ${againErrors.join(' | ')})`);

  step('a connection cut with a resend due: the new one sends no message to a room before its join, even with its welcome late');
  // Hank's frames pass through here. The first rate_limited refusal cuts
  // his connection; the next one's frames from the server (its welcome
  // first) are held for longer than the page's retry wait (1 s).
  const sockets = []; // per connection, the frames the page sent on it
  let cutDone = false;
  let releaseWelcome;
  const welcomeHeld = new Promise((r) => (releaseWelcome = r));
  const hankRoute = (ws) => {
    const server = ws.connectToServer();
    const mine = [];
    sockets.push(mine);
    const second = sockets.length === 2;
    ws.onMessage((m) => {
      mine.push(String(m));
      server.send(m);
    });
    let cut = false;
    server.onMessage(async (m) => {
      if (second) await welcomeHeld;
      if (cut) return;
      ws.send(m);
      if (!cutDone && String(m).includes('"rate_limited"')) {
        cutDone = cut = true;
        ws.close({ code: 1011, reason: 'cut by the test' });
        server.close();
      }
    });
  };
  const hank = await loginAt(context, BASE, 'hank', { before: (page) => page.routeWebSocket(/\/api\/v1\/ws/, hankRoute) });
  await join(hank, 'porch');
  const porch = [...Array(FAST).keys()].map((i) => `porch ${String(i).padStart(2, '0')}`);
  await sayAtOnce(hank, porch);
  for (let i = 0; sockets.length < 2; i++) {
    check(i < WAIT / 50, 'hank\'s page connects again after the cut');
    await new Promise((r) => setTimeout(r, 50)); // the route is called on its own
  }
  // The window in which the old retry timer fired: nothing may go before the welcome.
  await new Promise((r) => setTimeout(r, 2000));
  const beforeWelcome = [...sockets[1]];
  releaseWelcome();
  await connected(hank, 'hank');
  check(beforeWelcome.length === 0, `hank's page sends nothing before the welcome (sent ${beforeWelcome.join(' | ')})`);
  await seeLine(hank, 'hank', 'message', porch[FAST - 1], '[data-room="porch"]', { timeout: 3 * WAIT });
  const shownPorch = await hank.$$eval('#messages .line[data-type="message"] .text', (els) =>
    els.map((el) => el.textContent).filter((t) => t.startsWith('porch ')),
  );
  check(shownPorch.join('|') === porch.join('|'), `hank's messages show once each, in order (got ${shownPorch.join(', ')})`);
  const firstJoin = sockets[1].findIndex((p) => p.includes('"join_room"'));
  const firstToRoom = sockets[1].findIndex((p) => p.includes('"message"') && p.includes('"porch"'));
  check(firstJoin >= 0 && firstJoin < firstToRoom, `hank's page joins porch again before it sends to it (join at ${firstJoin}, message at ${firstToRoom})`);
  const hankErrors = await hank.$$eval('#messages .line[data-type="error"] .text', (els) => els.map((el) => el.textContent));
  check(!hankErrors.some((t) => t.includes('not_in_room')), `hank sees no not_in_room (got ${hankErrors.join(' | ')})`);
  await hank.close();

  const root = await fetch(`${BASE}/api/v1/websocket/test-token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'root', admin: true }),
  }).then((r) => r.json());
  const moderate = (route, body) =>
    fetch(`${BASE}/api/v1/websocket/${route}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${root.access_token}` },
      body: JSON.stringify(body),
    }).then((r) => check(r.ok, `POST ${route} answered ${r.status}`));

  step('an administrator kicks alice from the lounge: her page leaves it, and does not join it again on a reconnect');
  const sentBefore = sentFrames.get(alice).length;
  await moderate('rooms/lounge/kick', { user: 'alice' });
  await alice.waitForFunction(() => document.getElementById('currentRoom').textContent === 'none', null, { timeout: WAIT }).catch(async () => {
    throw new Error(`alice's page still shows her in ${await alice.textContent('#currentRoom')} after the kick`);
  });
  await say(alice, 'after the kick');
  await seeLine(bob, 'bob', 'message', 'after the kick', ':not([data-room])');
  await alice.click('#disconnectButton');
  await alice.waitForSelector('#status[data-state="disconnected"]', { timeout: WAIT });
  await alice.click('#connectButton');
  await connected(alice, 'alice');
  await alice.fill('#privateUserInput', 'bob');
  await alice.fill('#privateMessageInput', 'kick marker');
  await alice.click('#sendPrivateButton');
  await seeLine(bob, 'bob', 'private_message', 'kick marker');
  for (let i = 0; !sentFrames.get(alice).some((p) => p.includes('kick marker')); i++) {
    check(i < WAIT / 50, 'alice\'s page sent the marker');
    await new Promise((r) => setTimeout(r, 50)); // framesent events come on their own
  }
  const rejoins = sentFrames.get(alice).slice(sentBefore).filter((p) => p.includes('"join_room"'));
  check(!rejoins.some((p) => p.includes('"lounge"')), `alice's page does not join the lounge again (sent ${rejoins.join(' | ')})`);
  const kickErrors = await alice.$$eval('#messages .line[data-type="error"] .text', (els) => els.map((el) => el.textContent));
  check(!kickErrors.some((t) => t.includes('not_in_room')), `alice sees no not_in_room (got ${kickErrors.join(' | ')})`);

  step('an administrator disconnects bob: his page says why and stays disconnected');
  await moderate('users/bob/disconnect', { reason: 'cool off' });
  await bob.waitForSelector('#status[data-state="disconnected"]', { timeout: WAIT });
  check(
    (await bob.textContent('#status')).includes('Disconnected by an administrator: cool off'),
    `bob's page says who disconnected him and why (got "${await bob.textContent('#status')}")`,
  );
  await bob.waitForTimeout(1500);
  check((await bob.getAttribute('#status', 'data-state')) === 'disconnected', 'bob\'s page does not reconnect');

  step('a banned user is told so, at once and when connecting again');
  await moderate('bans', { user: 'alice', duration: '1h', reason: 'spam' });
  await alice.waitForSelector('#status[data-state="disconnected"]', { timeout: WAIT });
  check((await alice.textContent('#status')).includes('Banned: banned from this server'), 'alice\'s page says she is banned');
  await alice.click('#connectButton');
  await alice.waitForFunction(
    () => document.getElementById('status').textContent.includes('Banned') && document.getElementById('status').dataset.state === 'disconnected',
    null,
    { timeout: WAIT },
  );
}, { viewport: { width: 1000, height: 820 } });
