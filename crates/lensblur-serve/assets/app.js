// lensblur web app: upload once (analysis on the server), then every control change re-renders a
// preview-size image. Plain modern JS, no build step, no dependencies.
'use strict';

// The render controls. Adding a control = one entry here (its `name` is the query parameter the
// server parses in params.rs). `bands` draws labelled ranges under a slider.
const CONTROLS = [
  {
    name: 'strength', label: 'Strength', min: 1, max: 100, step: 1, value: 30,
    bands: [['subtle', 1, 15], ['medium', 20, 35], ['strong', 40, 60], ['maximum', 70, 100]],
    show: (v) => String(Math.round(v)),
  },
  {
    name: 'highlights', label: 'Highlights', min: 0, max: 1, step: 0.05, value: 0.5,
    sub: 'How strongly lights bloom into bokeh balls',
    show: (v) => `${Math.round(v * 100)}%`,
  },
  {
    name: 'aperture', type: 'select', label: 'Aperture', value: 'disc',
    options: [['disc', 'Disc'], ['pentagon', '5 blades'], ['hexagon', '6 blades'],
      ['heptagon', '7 blades'], ['octagon', '8 blades'], ['nonagon', '9 blades']],
  },
  {
    name: 'aperture_curvature', label: 'Blade curvature', min: 0, max: 1, step: 0.05, value: 0,
    sub: 'Straight blades (0) to round (1)',
    show: (v) => v.toFixed(2),
    when: () => state.params.aperture !== 'disc',
  },
  {
    name: 'aperture_rotation', label: 'Blade rotation', min: 0, max: 72, step: 1, value: 0,
    show: (v) => `${Math.round(v)}°`,
    when: () => state.params.aperture !== 'disc',
  },
  {
    name: 'cats_eye', label: "Cat's eye", min: 0, max: 1, step: 0.05, value: 0,
    sub: 'Bokeh balls squeezed toward the corners, like a fast lens wide open',
    show: (v) => `${Math.round(v * 100)}%`,
  },
  {
    name: 'bokeh_profile', type: 'select', label: 'Ball profile', value: 'flat',
    options: [['flat', 'Even'], ['smooth', 'Soft rim'], ['bubble', 'Bright rim (soap bubble)']],
  },
  {
    name: 'grain', type: 'select', label: 'Grain', value: 'auto',
    options: [['auto', 'Match the photo'], ['off', 'Off'], ['3', 'Light (3 levels)'], ['6', 'Strong (6 levels)']],
  },
  {
    // A checkbox control, shown only when it matters.
    name: 'force', type: 'checkbox', label: 'Blur anyway', value: false,
    sub: 'No clear subject was found, so the photo is shown unblurred',
    when: (session) => !session.subject,
  },
];

// Features the page can offer once the server supports them.
const FEATURES = { focusPoint: false };

const $ = (id) => document.getElementById(id);
const state = {
  session: null,
  params: Object.fromEntries(CONTROLS.map((c) => [c.name, c.value])),
  inFlight: false,
  pending: false,
  renders: 0,
  afterUrl: null,
};

// ---------------------------------------------------------------------------------------------
// Errors

let errorTimer = 0;
function showError(text) {
  const el = $('error');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

async function errorText(resp) {
  try {
    const j = await resp.json();
    if (resp.status === 503 && resp.headers.get('Retry-After')) {
      return `${j.detail} (retry in ${resp.headers.get('Retry-After')} s)`;
    }
    return j.detail || j.error || `HTTP ${resp.status}`;
  } catch {
    return `HTTP ${resp.status}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Controls

function buildControls() {
  const box = $('controls');
  for (const c of CONTROLS) {
    const wrap = document.createElement('div');
    wrap.className = 'control';
    wrap.dataset.name = c.name;
    const id = `ctl-${c.name}`;
    if (c.type === 'checkbox') {
      wrap.innerHTML = `<label class="switch"><input type="checkbox" id="${id}"><span></span></label><div class="sub"></div>`;
      wrap.querySelector('span').textContent = c.label;
      wrap.querySelector('.sub').textContent = c.sub || '';
      const input = wrap.querySelector('input');
      input.checked = Boolean(c.value);
      input.addEventListener('change', () => { state.params[c.name] = input.checked; requestRender(); });
      box.append(wrap);
      continue;
    }
    if (c.type === 'select') {
      wrap.innerHTML = `<div class="head"><label for="${id}"></label></div>`;
      wrap.querySelector('label').textContent = c.label;
      const sel = document.createElement('select');
      Object.assign(sel, { id, name: c.name });
      for (const [value, text] of c.options) {
        const o = document.createElement('option');
        o.value = value;
        o.textContent = text;
        sel.append(o);
      }
      sel.value = c.value;
      sel.addEventListener('change', () => {
        state.params[c.name] = sel.value;
        refreshVisibility();
        requestRender();
      });
      wrap.append(sel);
      box.append(wrap);
      continue;
    }
    wrap.innerHTML = `<div class="head"><label for="${id}"></label><output for="${id}"></output></div>`;
    wrap.querySelector('label').textContent = c.label;
    const out = wrap.querySelector('output');
    const input = document.createElement('input');
    Object.assign(input, { type: 'range', id, name: c.name, min: c.min, max: c.max, step: c.step, value: c.value });
    wrap.append(input);
    let bands = null;
    if (c.bands) {
      bands = document.createElement('div');
      bands.className = 'bands';
      const span = c.max - c.min;
      for (const [label, lo, hi] of c.bands) {
        const b = document.createElement('div');
        b.className = 'band';
        b.dataset.lo = lo;
        b.dataset.hi = hi;
        b.style.left = `${((lo - c.min) / span) * 100}%`;
        b.style.width = `${((hi - lo) / span) * 100}%`;
        b.innerHTML = '<b></b>';
        b.querySelector('b').textContent = label;
        bands.append(b);
      }
      wrap.append(bands);
    }
    if (c.sub) {
      const s = document.createElement('div');
      s.className = 'sub';
      s.textContent = c.sub;
      wrap.append(s);
    }
    const update = () => {
      const v = Number(input.value);
      state.params[c.name] = v;
      out.textContent = c.show ? c.show(v) : String(v);
      if (bands) {
        for (const b of bands.children) {
          b.classList.toggle('active', v >= Number(b.dataset.lo) && v <= Number(b.dataset.hi));
        }
      }
    };
    input.addEventListener('input', () => { update(); requestRender(); });
    update();
    box.append(wrap);
  }
}

function query(extra = {}) {
  return new URLSearchParams({ ...state.params, ...extra }).toString();
}

// ---------------------------------------------------------------------------------------------
// Upload and analysis

function setProgress(text, fraction) {
  $('progress').hidden = false;
  $('progress-text').textContent = text;
  $('progress').classList.toggle('indeterminate', fraction == null);
  if (fraction != null) $('progress-fill').style.width = `${Math.round(fraction * 100)}%`;
}

function upload(file) {
  if (!file) return;
  if (!/^image\/(jpeg|png|webp)$/.test(file.type) && file.type !== '') {
    showError(`${file.name} is ${file.type}; lensblur reads JPEG, PNG and WebP.`);
    return;
  }
  const form = new FormData();
  form.append('image', file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/v1/sessions');
  xhr.responseType = 'json';
  let analysing = null;
  const started = performance.now();
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setProgress(`Uploading ${file.name}… ${Math.round((e.loaded / e.total) * 100)}%`, e.loaded / e.total);
  };
  xhr.upload.onload = () => {
    // The bytes are there; the server now decodes, runs the model and refines the matte. There is
    // no meaningful percentage for that, so show elapsed time instead of a made-up bar.
    const t0 = performance.now();
    const tick = () => setProgress(`Finding the subject and refining its edges… ${((performance.now() - t0) / 1000).toFixed(1)} s`, null);
    tick();
    analysing = setInterval(tick, 100);
  };
  xhr.onloadend = () => {
    clearInterval(analysing);
    $('progress').hidden = true;
    $('drop').hidden = false;
    if (xhr.status === 201 && xhr.response) {
      openSession(xhr.response, file.name, performance.now() - started);
    } else if (xhr.status === 0) {
      showError('The server could not be reached.');
    } else {
      const j = xhr.response || {};
      const retry = xhr.getResponseHeader('Retry-After');
      showError(`${j.detail || `Upload failed (HTTP ${xhr.status})`}${retry ? ` — try again in ${retry} s` : ''}`);
    }
  };
  $('drop').hidden = true;
  setProgress(`Uploading ${file.name}… 0%`, 0);
  xhr.send(form);
}

function openSession(s, name, ms) {
  if (state.session) fetch(`/v1/sessions/${state.session.id}`, { method: 'DELETE' }).catch(() => {});
  state.session = { ...s, name: name.replace(/\.[^.]+$/, '') };
  const stage = $('stage');
  stage.style.setProperty('--ar', String(s.preview_width / s.preview_height));
  $('before').src = `/v1/sessions/${s.id}/original`;
  $('matte').src = `/v1/sessions/${s.id}/matte`;
  $('after').removeAttribute('src');
  delete $('after').dataset.query;
  delete $('after').dataset.renders;
  $('download-status').textContent = '';
  $('focus-hint').hidden = true;
  $('pick').hidden = true;
  $('work').hidden = false;
  $('new-photo').hidden = false;
  refreshVisibility();
  const subject = s.subject ? `subject found (confidence ${s.confidence.toFixed(2)})` : 'no clear subject: shown unblurred';
  state.info = `${s.width}×${s.height} · ${subject} · analysed in ${(ms / 1000).toFixed(1)} s`;
  $('stage-info').textContent = state.info;
  requestRender();
}

/** Shows each control whose `when` holds for the current session and values. */
function refreshVisibility() {
  for (const c of CONTROLS) {
    const el = document.querySelector(`.control[data-name="${c.name}"]`);
    if (el) el.hidden = c.when ? !(state.session && c.when(state.session)) : false;
  }
}

// ---------------------------------------------------------------------------------------------
// Live preview: at most one request in flight; when it returns, render the latest values if they
// changed meanwhile. Intermediate slider positions are skipped, never queued.

function requestRender() {
  if (!state.session) return;
  state.pending = true;
  if (!state.inFlight) pump();
}

async function pump() {
  state.inFlight = true;
  $('busy').hidden = false;
  while (state.pending && state.session) {
    state.pending = false;
    const q = query();
    const id = state.session.id;
    try {
      const t0 = performance.now();
      const resp = await fetch(`/v1/sessions/${id}/preview?${q}`);
      if (!resp.ok) {
        const text = await errorText(resp);
        if (resp.status === 404) {
          showError('This photo is no longer in the server\'s memory (idle too long or evicted). Please upload it again.');
          resetToPick();
          break;
        }
        showError(text);
        continue;
      }
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      await new Promise((ok) => {
        const img = $('after');
        img.onload = ok;
        img.onerror = ok;
        img.src = url;
      });
      if (state.afterUrl) URL.revokeObjectURL(state.afterUrl);
      state.afterUrl = url;
      state.renders += 1;
      const after = $('after');
      after.dataset.renders = String(state.renders);
      after.dataset.query = q;
      const timing = parseTiming(resp.headers.get('Server-Timing'));
      $('stage-info').textContent = `${state.info} · preview ${state.session.preview_width}×${state.session.preview_height}: render ${timing.render ?? '?'} ms, round trip ${Math.round(performance.now() - t0)} ms`;
    } catch (e) {
      showError(`Preview failed: ${e.message}`);
    }
  }
  state.inFlight = false;
  $('busy').hidden = true;
}

function parseTiming(h) {
  const out = {};
  for (const part of (h || '').split(',')) {
    const m = part.trim().match(/^([\w-]+);dur=([\d.]+)/);
    if (m) out[m[1]] = Math.round(Number(m[2]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Before/after, matte, focus point

function setupViews() {
  const stage = $('stage');
  const compare = $('compare');
  const line = $('split-line');
  compare.addEventListener('change', () => {
    stage.classList.toggle('comparing', compare.checked);
    line.hidden = !compare.checked;
  });
  const setSplit = (e) => {
    const r = stage.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    stage.style.setProperty('--split', `${(f * 100).toFixed(2)}%`);
  };
  let dragging = false;
  stage.addEventListener('pointerdown', (e) => {
    if (compare.checked) {
      dragging = true;
      stage.setPointerCapture(e.pointerId);
      setSplit(e);
    } else if (FEATURES.focusPoint) {
      setFocusPoint(e);
    } else {
      $('focus-hint').hidden = false;
    }
  });
  stage.addEventListener('pointermove', (e) => { if (dragging) setSplit(e); });
  stage.addEventListener('pointerup', () => { dragging = false; });
  stage.addEventListener('pointercancel', () => { dragging = false; });

  const hold = $('hold');
  const on = (e) => { e.preventDefault(); stage.classList.add('holding'); };
  const off = () => stage.classList.remove('holding');
  hold.addEventListener('pointerdown', on);
  for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) hold.addEventListener(ev, off);
  hold.addEventListener('keydown', (e) => { if (e.key === ' ' || e.key === 'Enter') on(e); });
  hold.addEventListener('keyup', off);

  $('show-matte').addEventListener('change', (e) => { $('matte').hidden = !e.target.checked; });
}

// Placeholder: once depth/focus exists, send the point (0–1 image coordinates) as a render
// parameter and re-render.
function setFocusPoint(e) {
  const r = $('stage').getBoundingClientRect();
  const x = (e.clientX - r.left) / r.width;
  const y = (e.clientY - r.top) / r.height;
  const mark = $('focus-mark');
  mark.style.left = `${x * 100}%`;
  mark.style.top = `${y * 100}%`;
  mark.hidden = false;
  state.params.focus = `${x.toFixed(4)},${y.toFixed(4)}`;
  requestRender();
}

// ---------------------------------------------------------------------------------------------
// Download

async function download() {
  if (!state.session) return;
  const button = $('download');
  const status = $('download-status');
  const format = document.querySelector('input[name=format]:checked').value;
  button.disabled = true;
  status.innerHTML = '<span class="spinner" style="display:inline-block;vertical-align:-4px;margin-right:8px"></span>';
  status.append(`Rendering ${state.session.width}×${state.session.height}…`);
  try {
    const t0 = performance.now();
    const resp = await fetch(`/v1/sessions/${state.session.id}/download?${query({ format })}`);
    if (!resp.ok) throw new Error(await errorText(resp));
    const blob = await resp.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${state.session.name}.blur.${format === 'jpeg' ? 'jpg' : format}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    status.textContent = `Saved ${a.download} (${(blob.size / 1e6).toFixed(1)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s)`;
  } catch (e) {
    status.textContent = '';
    showError(`Download failed: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------

function resetToPick() {
  state.session = null;
  $('work').hidden = true;
  $('pick').hidden = false;
  $('drop').hidden = false;
  $('new-photo').hidden = true;
  $('file').value = '';
}

function setupPick() {
  const drop = $('drop');
  $('file').addEventListener('change', (e) => upload(e.target.files[0]));
  for (const ev of ['dragenter', 'dragover']) {
    document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over'); });
  }
  for (const ev of ['dragleave', 'drop']) {
    document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove('over'); });
  }
  document.addEventListener('drop', (e) => {
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) upload(f);
  });
  $('new-photo').addEventListener('click', () => {
    if (state.session) fetch(`/v1/sessions/${state.session.id}`, { method: 'DELETE' }).catch(() => {});
    resetToPick();
  });
}

buildControls();
setupPick();
setupViews();
$('download').addEventListener('click', download);
