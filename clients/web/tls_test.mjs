// Opens Tertulia's rooms page over https in real headless Chromium and
// checks that it chats over wss. Run by tls_test.go, which serves a node
// with a certificate of a throwaway CA. Chromium trusts exactly that
// certificate's key (SPKI, base64 SHA-256) and nothing else it would not
// trust anyway. Prints OK when every check passed.
//
// Environment: BASE_URL (https://localhost:PORT), SPKI, PROFILE (a fresh
// Chromium user-data-dir), CHROMIUM (path).
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const WAIT = 10_000;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function main() {
  const context = await chromium.launchPersistentContext(process.env.PROFILE, {
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      `--ignore-certificate-errors-spki-list=${process.env.SPKI}`,
    ],
  });
  try {
    const page = await context.newPage();
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
    const resp = await page.goto(`${BASE}/static/rooms.html`);
    check(resp && resp.ok(), `GET rooms.html over https: ${resp && resp.status()}`);
    console.log('step: rooms.html loaded over https');
    await page.fill('#usernameInput', 'alice');
    await page.click('#loginButton');
    await page.waitForSelector('#status[data-state="connected"]', { timeout: WAIT }).catch((err) => {
      throw new Error(`not connected: ${err.message}`);
    });
    check(sockets.length > 0 && sockets.every((u) => u.startsWith('wss://')), `websockets ${sockets}, want wss://`);
    console.log(`step: connected over ${sockets[0].split('?')[0]}`);
    await page.fill('#messageInput', 'hola over tls');
    await page.press('#messageInput', 'Enter');
    await page
      .waitForFunction(
        (text) => [...document.querySelectorAll('#messages .line .text')].some((el) => el.textContent === text),
        'hola over tls',
        { timeout: WAIT },
      )
      .catch(() => {
        throw new Error('own message not seen');
      });
    console.log('step: own message seen');
    console.log('OK');
  } finally {
    await context.close();
  }
}

main().catch((err) => {
  console.log(`FAIL ${err.message}`);
  process.exit(1);
});
