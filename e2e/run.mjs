// Browser end-to-end test of the lensblur web app in real headless Chromium (the system's
// /usr/bin/chromium; Playwright never downloads a browser here).
//
// Run by crates/lensblur-serve/tests/browser.rs, which starts the server. Environment:
//   LENSBLUR_URL      the server, e.g. http://127.0.0.1:40123/
//   LENSBLUR_PHOTO    a photo to upload
//   LENSBLUR_PHOTO_NO_SUBJECT  optional: a photo without a clear subject
//   LENSBLUR_OUT      a directory for the downloads (blur.png, blur.jpg) and screenshots
//   LENSBLUR_CHROMIUM the browser (default /usr/bin/chromium)
// Exits non-zero with a message on the first failed check.

import { chromium } from 'playwright-core';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const url = process.env.LENSBLUR_URL;
const photo = process.env.LENSBLUR_PHOTO;
const out = process.env.LENSBLUR_OUT;
const executablePath = process.env.LENSBLUR_CHROMIUM || '/usr/bin/chromium';
if (!url || !photo || !out) {
  console.error('set LENSBLUR_URL, LENSBLUR_PHOTO and LENSBLUR_OUT');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  console.log(`ok - ${msg}`);
}

// Pixels of an <img> (drawn at 160 px wide) as a flat RGBA array.
async function pixels(page, selector) {
  return page.$eval(selector, (img) => {
    const w = 160;
    const h = Math.max(1, Math.round((img.naturalHeight / img.naturalWidth) * w));
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0, w, h);
    return Array.from(g.getImageData(0, 0, w, h).data);
  });
}

function meanAbsDiff(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

// Waits until the preview shows the current slider values and nothing is in flight.
async function settled(page) {
  await page.waitForFunction(() => {
    const after = document.getElementById('after');
    const want = new URLSearchParams(state.params).toString();
    return !state.inFlight && !state.pending && after.dataset.query === want && after.complete;
  }, null, { timeout: 60000 });
}

async function upload(page) {
  await page.setInputFiles('#file', photo);
  await page.waitForSelector('#after[data-renders]', { timeout: 180000 });
  await settled(page);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  // ---- Desktop -------------------------------------------------------------------------------
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });

  await page.goto(url);
  check(await page.isVisible('#drop'), 'the drop zone is shown');
  await page.screenshot({ path: join(out, 'desktop-empty.png') });

  // Progress is honest: the upload/analysis status appears while the request runs.
  const progressSeen = page.waitForSelector('#progress:not([hidden])', { timeout: 10000 }).then(() => true, () => false);
  await upload(page);
  check(await progressSeen, 'progress was shown while uploading and analysing');
  check(await page.isVisible('#work'), 'the workspace is shown after analysis');
  const session = await page.evaluate(() => state.session);
  check(session && session.width > 0 && session.preview_width > 0, `session ${session.width}x${session.height}, preview ${session.preview_width}x${session.preview_height}`);
  check(!(await page.isVisible('#ctl-force')), 'no "blur anyway" control when a subject was found');
  const first = await pixels(page, '#after');
  const info = await page.textContent('#stage-info');
  check(/render \d+ ms/.test(info), `render time shown: "${info}"`);

  // Drag the strength slider to the right end; requests are coalesced, the last value wins.
  const slider = page.locator('#ctl-strength');
  const box = await slider.boundingBox();
  const rendersBefore = await page.evaluate(() => state.renders);
  await page.mouse.move(box.x + box.width * 0.29, box.y + box.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 25; i++) {
    await page.mouse.move(box.x + box.width * (0.29 + (0.71 * i) / 25), box.y + box.height / 2);
    await page.waitForTimeout(15);
  }
  await page.mouse.up();
  await settled(page);
  const strength = await page.evaluate(() => state.params.strength);
  check(strength >= 95, `slider dragged to ${strength}`);
  const renders = (await page.evaluate(() => state.renders)) - rendersBefore;
  check(renders >= 1 && renders <= 26, `${renders} preview renders for 25 slider moves (coalesced)`);
  const strong = await pixels(page, '#after');
  const d = meanAbsDiff(first, strong);
  check(d > 1.5, `the preview changed with the slider (mean |Δ| ${d.toFixed(2)} of 255)`);
  check(await page.isVisible('.band.active >> text=maximum'), 'the "maximum" band is highlighted');
  await page.screenshot({ path: join(out, 'desktop.png') });

  // Highlights control re-renders too.
  await page.locator('#ctl-highlights').fill('1');
  await settled(page);
  check((await page.evaluate(() => state.params.highlights)) === 1, 'highlights set to 100%');


  // Before/after split.
  await page.check('#compare');
  const stage = page.locator('#stage');
  const sb = await stage.boundingBox();
  await page.mouse.move(sb.x + sb.width * 0.5, sb.y + sb.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(sb.x + sb.width * 0.6, sb.y + sb.height * 0.5, { steps: 5 });
  await page.mouse.up();
  const split = await page.$eval('#stage', (s) => s.style.getPropertyValue('--split'));
  check(Math.abs(parseFloat(split) - 60) < 2, `split moved to ${split}`);
  check(await page.$eval('#before', (i) => getComputedStyle(i).visibility === 'visible' && i.naturalWidth > 0), 'the original shows in the split');
  const before = await pixels(page, '#before');
  check(meanAbsDiff(before, strong) > 1.5, 'before and after differ');
  await page.screenshot({ path: join(out, 'desktop-compare.png') });
  await page.uncheck('#compare');
  check(await page.$eval('#before', (i) => getComputedStyle(i).visibility === 'hidden'), 'split off hides the original');

  // Press and hold.
  const hold = page.locator('#hold');
  const hb = await hold.boundingBox();
  await page.mouse.move(hb.x + hb.width / 2, hb.y + hb.height / 2);
  await page.mouse.down();
  check(await page.$eval('#stage', (s) => s.classList.contains('holding')), 'holding shows the original');
  await page.mouse.up();
  check(!(await page.$eval('#stage', (s) => s.classList.contains('holding'))), 'releasing shows the result');

  // Matte overlay.
  await page.check('#show-matte');
  await page.waitForFunction(() => { const m = document.getElementById('matte'); return !m.hidden && m.complete && m.naturalWidth > 0; });
  check(true, 'matte overlay shown');
  await page.screenshot({ path: join(out, 'desktop-matte.png') });
  await page.uncheck('#show-matte');

  // Aperture: the blade controls appear only for polygons, and the shape changes the preview.
  check(!(await page.isVisible('#ctl-aperture_curvature')), 'no blade controls for a disc');
  const disc = await pixels(page, '#after');
  await page.selectOption('#ctl-aperture', 'hexagon');
  await settled(page);
  check(await page.isVisible('#ctl-aperture_curvature'), 'blade controls shown for a hexagon');
  const hex = await pixels(page, '#after');
  const dh = meanAbsDiff(disc, hex);
  check(dh > 0.05, `the hexagon aperture changed the preview (mean |Δ| ${dh.toFixed(3)})`);
  await page.selectOption('#ctl-grain', 'off');
  await settled(page);
  check((await page.evaluate(() => state.params.grain)) === 'off', 'grain switched off');
  await page.screenshot({ path: join(out, 'desktop-aperture.png') });

  // Downloads at full resolution (the Rust side decodes them).
  for (const [format, file] of [['png', 'blur.png'], ['jpeg', 'blur.jpg']]) {
    await page.check(`input[name=format][value=${format}]`);
    const [dl] = await Promise.all([
      page.waitForEvent('download', { timeout: 120000 }),
      page.click('#download'),
    ]);
    const path = join(out, file);
    await dl.saveAs(path);
    check(statSync(path).size > 1000, `downloaded ${dl.suggestedFilename()} (${statSync(path).size} bytes)`);
  }

  // A photo without a clear subject comes back unblurred; "blur anyway" appears and works.
  const noSubject = process.env.LENSBLUR_PHOTO_NO_SUBJECT;
  if (noSubject) {
    await page.click('#new-photo');
    await page.setInputFiles('#file', noSubject);
    await page.waitForFunction(() => state.session && document.getElementById('after').dataset.renders, null, { timeout: 180000 });
    await settled(page);
    check(!(await page.evaluate(() => state.session.subject)), 'no subject found in the second photo');
    check(await page.isVisible('#ctl-force'), 'the "blur anyway" control appears');
    const plain = await pixels(page, '#after');
    check(meanAbsDiff(plain, await pixels(page, '#before')) < 1.5, 'shown unblurred');
    await page.check('#ctl-force');
    await settled(page);
    const forced = await pixels(page, '#after');
    check(meanAbsDiff(plain, forced) > 1.0, `"blur anyway" blurs it (mean |Δ| ${meanAbsDiff(plain, forced).toFixed(2)})`);
    await page.screenshot({ path: join(out, 'desktop-no-subject.png') });
  }
  await ctx.close();

  // ---- Phone width ---------------------------------------------------------------------------
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true });
  const p2 = await phone.newPage();
  p2.on('pageerror', (e) => errors.push(`page error (phone): ${e.message}`));
  await p2.goto(url);
  await p2.screenshot({ path: join(out, 'narrow-empty.png') });
  await upload(p2);
  const overflow = await p2.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal scrolling at 390 px (overflow ${overflow})`);
  await p2.screenshot({ path: join(out, 'narrow.png'), fullPage: true });
  await phone.close();

  check(errors.length === 0, `no page errors${errors.length ? `: ${errors.join('; ')}` : ''}`);
} catch (e) {
  console.error(e.stack || String(e));
  if (errors.length) console.error(errors.join('\n'));
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log('e2e: all checks passed');
