// The buyers' area (/suivi/) in Debian's chromium (headless, playwright-core), each page
// checked with axe-core (WCAG 2.0/2.1 A and AA rules):
//
//   node suivi.mjs BASE_URL MAILDIR ADDRESS OUTDIR
//     login form -> the login link taken from the mail in MAILDIR -> list (screenshot kept)
//     -> filter "Lu par le destinataire" (in the URL; back and forward) -> detail -> the
//     receipt PDF downloaded and read back with pdftotext -> logout; a phone-sized viewport.
// Prints one "ok ..." line per step; exits 1 on the first failure (with a screenshot).
import { checks, launch } from './common.mjs';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const [base, maildir, address, outdir] = process.argv.slice(2);
if (!base || !maildir || !address || !outdir) {
  console.error('usage: node suivi.mjs BASE_URL MAILDIR ADDRESS OUTDIR');
  process.exit(64);
}

const browser = await launch();
let page;
const { fail, ok, shot, axe, noHorizontalScroll } = checks(() => page, outdir, 'suivi');

// The login link of a mail to ADDRESS that was not in `before` (text/plain, base64).
async function loginLink(before) {
  for (let i = 0; i < 150; i += 1) {
    for (const name of fs.readdirSync(maildir)) {
      if (before.has(name)) continue;
      const raw = fs.readFileSync(path.join(maildir, name), 'utf8');
      const split = raw.search(/\r?\n\r?\n/);
      if (split < 0 || !new RegExp(`^To: <${address}>`, 'mi').test(raw.slice(0, split))) continue;
      const text = Buffer.from(raw.slice(split).replace(/\s+/g, ''), 'base64').toString('utf8');
      const m = text.match(/https?:\/\/\S+\/suivi\/login\/[A-Za-z0-9_-]+/);
      if (m) return m[0];
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return fail(`no login mail for ${address} in ${maildir}`);
}

async function run() {
  const context = await browser.newContext({ acceptDownloads: true, locale: 'fr-FR' });
  page = await context.newPage();
  const first = await page.goto(`${base}/suivi/`);
  if (first.status() !== 200) fail(`login page status ${first.status()}`);
  await page.getByLabel('Adresse électronique').waitFor();
  await axe('login');
  const before = new Set(fs.existsSync(maildir) ? fs.readdirSync(maildir) : []);
  await page.getByLabel('Adresse électronique').fill(address);
  await Promise.all([page.waitForNavigation(),
    page.getByRole('button', { name: 'Recevoir un lien de connexion' }).click()]);
  await page.getByText('un lien de connexion vient d\'y être envoyé').waitFor();
  ok('the login form answers that a link was sent');

  const link = await loginLink(before);
  ok('the login link arrived by mail through Postfix');
  await page.goto(link);
  await Promise.all([page.waitForNavigation(),
    page.getByRole('button', { name: 'Se connecter' }).click()]);
  await page.getByRole('heading', { name: 'Suivi des courriers envoyés' }).waitFor();
  await page.getByText(`Connecté : ${address}`).waitFor();
  ok('signed in through the mailed link: the list');
  await shot('list');
  await axe('list');
  await page.setViewportSize({ width: 360, height: 740 });
  await noHorizontalScroll('list');
  await shot('list-phone');
  ok('the list fits a 360 px wide phone screen');
  await page.setViewportSize({ width: 1280, height: 900 });
  const total = await page.locator('#results-title').innerText();

  await page.getByLabel('Lu par le destinataire').check();
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Rechercher' }).click()]);
  if (!page.url().includes('status=read')) fail(`the filter is not in the URL: ${page.url()}`);
  const filtered = await page.locator('#results-title').innerText();
  if (!filtered.startsWith('1 courrier')) fail(`filtered on "Lu par le destinataire": ${filtered}`);
  if (await page.locator('table.list tbody tr').count() !== 1) fail('the filtered list has not one row');
  await page.locator('table.list').getByText('Lu par le destinataire').waitFor();
  ok(`filter "Lu par le destinataire": ${filtered} (of ${total}), in the URL`);
  await page.goBack();
  if ((await page.locator('#results-title').innerText()) !== total) fail('back did not restore the list');
  await page.goForward();
  if (!(await page.locator('#results-title').innerText()).startsWith('1 courrier')) fail('forward did not restore the filter');
  ok('the back and forward buttons move between the filtered and the whole list');

  await Promise.all([page.waitForNavigation(), page.locator('table.list tbody a').first().click()]);
  await page.getByRole('heading', { name: 'Echanges' }).waitFor();
  await page.getByText(/Courrier lu par /).first().waitFor();
  ok('the detail with its timeline');
  await shot('detail');
  await axe('detail');
  await page.setViewportSize({ width: 360, height: 740 });
  await noHorizontalScroll('detail');
  await page.setViewportSize({ width: 1280, height: 900 });

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Télécharger au format PDF' }).click(),
  ]);
  const saved = path.join(outdir, 'suivi-' + download.suggestedFilename());
  await download.saveAs(saved);
  const text = execFileSync('pdftotext', [saved, '-'], { encoding: 'utf8' });
  if (!/Courrier lu par/.test(text)) fail('the downloaded PDF does not say the mail was read');
  ok(`the receipt PDF downloaded (${download.suggestedFilename()}) and read back with pdftotext`);

  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Se déconnecter' }).click()]);
  await page.getByText('Vous êtes déconnecté').waitFor();
  await page.goto(`${base}/suivi/`);
  await page.getByLabel('Adresse électronique').waitFor();
  ok('logged out: the list asks for the address again');
  await context.close();
}

try {
  await run();
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  if (page) await shot('failure').catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
