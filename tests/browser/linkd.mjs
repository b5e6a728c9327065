// Drives Debian's chromium (headless) through pli-linkd's pages with playwright-core and
// checks each page with axe-core (WCAG 2.0/2.1 A and AA rules).
//
//   node linkd.mjs recipient LINK OUTDIR ATTACHMENT_NAME REPLY_FILE
//     landing (keyboard only) -> content -> download -> reply form -> reply sent; the
//     unknown-link page; a phone-sized viewport without horizontal scrolling.
//   node linkd.mjs sender LINK OUTDIR
//     the buyer's reply landing -> the reply.
// Prints one "ok ..." line per step; exits 1 on the first failure (with a screenshot).
import { checks, launch } from './common.mjs';
import fs from 'node:fs';
import path from 'node:path';

const [mode, link, outdir, attachmentName, replyFile] = process.argv.slice(2);
if (!mode || !link || !outdir) {
  console.error('usage: node linkd.mjs recipient|sender LINK OUTDIR [ATTACHMENT_NAME REPLY_FILE]');
  process.exit(64);
}

const browser = await launch();
let page;
const { fail, ok, shot, axe, noHorizontalScroll } = checks(() => page, outdir, mode);

async function recipient() {
  const context = await browser.newContext({ acceptDownloads: true, locale: 'fr-FR' });
  page = await context.newPage();
  const landing = await page.goto(link);
  if (landing.status() !== 200) fail(`landing page status ${landing.status()}`);
  const lang = await page.getAttribute('html', 'lang');
  if (lang !== 'fr') fail(`html lang is ${lang}`);
  await page.getByRole('button', { name: 'Accéder au contenu du courrier' }).waitFor();
  ok('landing page with its button');
  await axe('landing');

  // Keyboard only: Tab to the button (skip link first), Enter.
  let focused = '';
  for (let i = 0; i < 6 && focused !== 'BUTTON'; i += 1) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
  }
  if (focused !== 'BUTTON') fail('the button cannot be reached with the Tab key');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  if (outline === 'none') fail('the focused button has no visible focus outline');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  await page.getByText('Accusé de réception enregistré').waitFor();
  await page.getByText('MARQUEUR-NAVIGATEUR').waitFor();
  ok('keyboard: Tab to the button, Enter: the content is shown');
  await shot('content');
  await axe('content');

  // With a text body, the HTML version sits in a closed <details>.
  await page.getByText('Version mise en forme (HTML)').click();
  const frame = page.frameLocator('iframe.body-html');
  await frame.getByText('HTML-NAVIGATEUR').waitFor();
  ok('the HTML body is shown in its sandboxed frame');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: attachmentName }).click(),
  ]);
  const saved = path.join(outdir, 'downloaded-' + download.suggestedFilename());
  await download.saveAs(saved);
  if (download.suggestedFilename() !== attachmentName) {
    fail(`download named ${download.suggestedFilename()}, expected ${attachmentName}`);
  }
  ok(`attachment downloaded as ${download.suggestedFilename()} (${fs.statSync(saved).size} bytes)`);

  await page.setViewportSize({ width: 360, height: 740 });
  await noHorizontalScroll('content');
  await shot('content-phone');
  ok('content page fits a 360 px wide phone screen');
  await page.setViewportSize({ width: 1280, height: 900 });

  await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Répondre au courrier' }).click()]);
  await page.getByLabel('Votre réponse (obligatoire)').waitFor();
  ok('reply form');
  await axe('reply');
  await page.getByLabel('Votre réponse (obligatoire)').fill('Réponse depuis le navigateur : MARQUEUR-REPONSE.');
  await page.getByLabel('Pièces jointes (facultatif)').setInputFiles(replyFile);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Envoyer la réponse' }).click()]);
  await page.getByRole('heading', { name: 'Votre réponse a été transmise' }).waitFor();
  if (await page.locator('.warning').count() > 0) fail('the sender could not be notified');
  ok('reply sent with an attachment');
  await shot('reply-sent');
  await axe('reply-sent');

  const base = new URL(link).origin;
  const unknown = await page.goto(`${base}/m/AAAAAAAAAAAAAAAAAAAAAA`);
  if (unknown.status() !== 404) fail(`unknown link status ${unknown.status()}`);
  await page.getByRole('heading', { name: 'Lien inconnu' }).waitFor();
  ok('unknown-link page');
  await axe('error');
  await context.close();
}

async function sender() {
  const context = await browser.newContext({ locale: 'fr-FR' });
  page = await context.newPage();
  const landing = await page.goto(link);
  if (landing.status() !== 200) fail(`reply landing status ${landing.status()}`);
  await page.getByRole('button', { name: 'Lire la réponse' }).waitFor();
  ok('the buyer\'s reply landing page');
  await axe('reply-landing');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Lire la réponse' }).click()]);
  await page.getByText('MARQUEUR-REPONSE').waitFor();
  ok('the reply is shown to the buyer');
  await shot('reply-content');
  await axe('reply-content');
  await context.close();
}

try {
  if (mode === 'recipient') {
    await recipient();
  } else if (mode === 'sender') {
    await sender();
  } else {
    fail(`unknown mode ${mode}`);
  }
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  if (page) await shot('failure').catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
