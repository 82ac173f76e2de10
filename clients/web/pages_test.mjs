// What the browser scripts (browser_test.mjs, rejoin_test.mjs,
// outage_test.mjs) share: the checks, the talk with the Go test that runs
// them (it answers on stdin), and the steps of a user on rooms.html. Not a
// test itself.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

/** WAIT bounds every wait for a page unless a script gives its own. */
export const WAIT = 10_000;

export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

export function step(what) {
  console.log(`step: ${what}`);
}

/** The lines the Go test writes on stdin; close once done, so that the script can exit. */
export const stdin = createInterface({ input: process.stdin });
export const lines = stdin[Symbol.asyncIterator]();

/** ask prints request, a line the Go test acts on, and checks that it answers want. */
export async function ask(request, want) {
  console.log(request);
  const answer = await lines.next();
  check(answer.value === want, `${request}: answered ${want} (got ${JSON.stringify(answer.value)})`);
}

/** launch starts headless Chromium (CHROMIUM) on the fresh profile PROFILE. */
function launch(options = {}) {
  return chromium.launchPersistentContext(process.env.PROFILE, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    ...options,
  });
}

/**
 * run launches Chromium with options and runs script with its context; it
 * prints OK if script returns, FAIL and the reason if it throws (and exits
 * 1), then closes the browser and stdin.
 */
export function run(script, options) {
  (async () => {
    const context = await launch(options);
    try {
      await script(context);
      console.log('OK');
    } finally {
      await context.close();
      stdin.close();
    }
  })().catch((err) => {
    console.log(`FAIL: ${err.message}`);
    process.exit(1);
  });
}

/**
 * login opens rooms.html at base in a new page of context and logs in as
 * user through the test-token flow; before, if given, is called with the
 * page before it loads (to watch or route its WebSockets).
 */
export async function login(context, base, user, { before, timeout = WAIT } = {}) {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.log(`${user}: page error: ${err.message}`));
  if (before) await before(page);
  await page.goto(`${base}/static/rooms.html`);
  await page.fill('#usernameInput', user);
  await page.click('#loginButton');
  await connected(page, user, timeout);
  return page;
}

export async function connected(page, who, timeout = WAIT) {
  await page.waitForSelector('#status[data-state="connected"]', { timeout }).catch((err) => {
    throw new Error(`${who}: not connected: ${err.message}`);
  });
}

/** join joins room and waits for the page to show it as the current room. */
export async function join(page, room, timeout = WAIT) {
  await page.fill('#roomInput', room);
  await page.click('#joinRoomButton');
  await page.waitForFunction((room) => document.getElementById('currentRoom').textContent === room, room, { timeout });
}

/** say sends text from the message box. */
export async function say(page, text) {
  await page.fill('#messageInput', text);
  await page.press('#messageInput', 'Enter');
}

/**
 * seeLine waits for a line of frame type (and matching the selector
 * extra) whose text is text, or ends with it if suffix. On failure it
 * names the lines the page shows.
 */
export async function seeLine(page, who, type, text, extra = '', { suffix = false, timeout = WAIT } = {}) {
  await page
    .waitForFunction(
      ([type, text, extra, suffix]) =>
        [...document.querySelectorAll(`#messages .line[data-type="${type}"]${extra}`)].some((el) => {
          const shown = el.querySelector('.text')?.textContent ?? '';
          return suffix ? shown.endsWith(text) : shown === text;
        }),
      [type, text, extra, suffix],
      { timeout },
    )
    .catch(async () => {
      const shown = await page.$$eval('#messages .line', (els) => els.map((el) => `${el.dataset.type}: ${el.textContent}`));
      throw new Error(`${who} did not see ${type} "${text}"; it shows: ${shown.join(' | ')}`);
    });
}
