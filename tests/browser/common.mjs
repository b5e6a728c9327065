// What the browser tests share: Debian's chromium started with the flags that work on these
// machines (no sandbox as root, no background networking: the network is closed), numbered
// "ok" lines, screenshots, axe-core (WCAG 2.0/2.1 A and AA rules) and the phone-width check
// on the current page.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export function launch() {
  return chromium.launch({
    executablePath: process.env.PLI_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

// The checks of one script: `currentPage()` gives the page they look at, screenshots go to
// OUTDIR/PREFIX-NAME.png.
export function checks(currentPage, outdir, prefix) {
  fs.mkdirSync(outdir, { recursive: true });
  let step = 0;

  function fail(message) {
    throw new Error(message);
  }

  function ok(text) {
    step += 1;
    console.log(`ok ${step} - ${text}`);
  }

  async function shot(name) {
    await currentPage().screenshot({ path: path.join(outdir, `${prefix}-${name}.png`), fullPage: true });
  }

  // No violation of the WCAG 2.0/2.1 A and AA rules on the current page.
  async function axe(name) {
    const page = currentPage();
    // Our CSP forbids scripts in pages; DevTools evaluation is not subject to it.
    await page.evaluate(axeSource);
    const result = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      await axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
        resultTypes: ['violations'],
      }));
    if (result.violations.length > 0) {
      const lines = result.violations.map(
        (v) => `  ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      await shot(`${name}-axe`);
      fail(`axe-core: ${result.violations.length} violation(s) on the ${name} page:\n${lines.join('\n')}`);
    }
    ok(`axe-core: no WCAG 2.1 A/AA violation on the ${name} page`);
  }

  async function noHorizontalScroll(name) {
    const { scroll, client } = await currentPage().evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    if (scroll > client) {
      await shot(`${name}-phone`);
      fail(`the ${name} page scrolls sideways on a phone (${scroll} > ${client} px)`);
    }
  }

  return { fail, ok, shot, axe, noHorizontalScroll };
}
