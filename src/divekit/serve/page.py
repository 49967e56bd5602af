"""``GET /``: one self-contained page (no script or style from elsewhere) to try the served model."""

from __future__ import annotations

import html
import json
from typing import Any

STYLE = """
body{font:15px/1.4 system-ui,sans-serif;max-width:760px;margin:24px auto;padding:0 12px;color:#222}
h1{font-size:20px;margin-bottom:4px} .facts{color:#666;font-size:13px;margin-bottom:18px}
section{border:1px solid #ddd;border-radius:6px;padding:12px 14px;margin:12px 0}
button{margin:6px 6px 6px 0;padding:5px 12px} #error{color:#b00020;min-height:1.2em}
#preview{vertical-align:middle;image-rendering:pixelated} #pad{background:#000;cursor:crosshair;touch-action:none;border-radius:4px}
#top{list-style:none;padding:0} #top li{margin:4px 0;display:flex;align-items:center;gap:8px}
#top .cls{width:140px;font-weight:600} #top .bar{height:12px;background:#4a7bd0;border-radius:2px}
textarea,input[type=text]{width:100%;box-sizing:border-box} pre{white-space:pre-wrap;background:#f6f6f6;padding:8px}
#attention-map td{width:28px;height:22px;font-size:10px;text-align:center} #attention-map th{font-weight:400;font-size:12px}
"""

CLASSIFIER = """
<section><h2>Classify an image</h2>
<input type="file" id="file" accept="image/*"> <button id="send-file">Classify upload</button>
<img id="preview" alt="" height="56">
<p>or draw one (white on black):</p>
<canvas id="pad" width="224" height="224"></canvas><br>
<button id="send-drawing">Classify drawing</button><button id="clear">Clear</button>
<ol id="top"></ol></section>
"""

LANGUAGE_MODEL = """
<section><h2>Continue a text</h2>
<textarea id="prompt" rows="3">the time traveller</textarea>
<label>length <input type="number" id="length" value="80" min="1"></label>
<label>temperature <input type="number" id="temperature" value="0" min="0" step="0.1"></label>
<label>top-k <input type="number" id="topk" min="1" placeholder="all"></label><br>
<button id="send-prompt">Generate</button><pre id="output"></pre></section>
"""

TRANSLATION = """
<section><h2>Translate a sentence</h2>
<input type="text" id="sentence" value="go .">
<label><input type="checkbox" id="attention" checked> show attention</label><br>
<button id="send-sentence">Translate</button><pre id="output"></pre>
<table id="attention-map"></table></section>
"""

SCRIPT = """
const $ = (id) => document.getElementById(id);
function fail(message) { $('error').textContent = message; }
async function call(path, options) {
  fail('');
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) { fail(body.error || response.statusText); return null; }
  return body;
}
function showTop(top) {
  $('top').innerHTML = '';
  for (const t of top) {
    const li = document.createElement('li');
    li.innerHTML = '<span class="cls"></span><span class="prob"></span><span class="bar"></span>';
    li.querySelector('.cls').textContent = t.class;
    li.querySelector('.prob').textContent = t.probability.toFixed(3);
    li.querySelector('.bar').style.width = Math.round(300 * t.probability) + 'px';
    $('top').appendChild(li);
  }
}
async function classify(blob) {
  const form = new FormData(); form.append('file', blob, 'image.png'); form.append('top_k', '5');
  const body = await call('/predict', {method: 'POST', body: form});
  if (body) showTop(body.top);
}
function setUpClassifier() {
  $('file').onchange = () => { const f = $('file').files[0]; if (f) $('preview').src = URL.createObjectURL(f); };
  $('send-file').onclick = () => { const f = $('file').files[0]; if (f) classify(f); else fail('choose an image file first'); };
  const pad = $('pad'), ctx = pad.getContext('2d');
  const clear = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, pad.width, pad.height); };
  clear(); $('clear').onclick = clear;
  let drawing = false;
  const at = (e) => { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  pad.onpointerdown = (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...at(e)); };
  pad.onpointermove = (e) => { if (!drawing) return; ctx.lineTo(...at(e)); ctx.strokeStyle = '#fff';
    ctx.lineWidth = 18; ctx.lineCap = 'round'; ctx.stroke(); };
  window.onpointerup = () => { drawing = false; };
  $('send-drawing').onclick = () => pad.toBlob(classify, 'image/png');
}
function setUpLanguageModel() {
  $('send-prompt').onclick = async () => {
    const request = {prompt: $('prompt').value, length: +$('length').value, temperature: +$('temperature').value};
    if ($('topk').value) request.top_k = +$('topk').value;
    const body = await call('/generate', {method: 'POST', headers: {'content-type': 'application/json'},
                                          body: JSON.stringify(request)});
    if (body) $('output').textContent = body.text;
  };
}
function showAttention(a) {
  const table = $('attention-map'); table.innerHTML = '';
  const head = table.insertRow(); head.insertCell();
  for (const s of a.source) { const th = document.createElement('th'); th.textContent = s; head.appendChild(th); }
  a.weights.forEach((row, i) => {
    const tr = table.insertRow(); const th = document.createElement('th'); th.textContent = a.output[i]; tr.appendChild(th);
    for (const w of row) { const td = tr.insertCell(); td.style.background = `rgba(74,123,208,${w})`; td.title = w.toFixed(2); }
  });
}
function setUpTranslation() {
  $('send-sentence').onclick = async () => {
    const request = {sentence: $('sentence').value, attention: $('attention').checked};
    const body = await call('/translate', {method: 'POST', headers: {'content-type': 'application/json'},
                                           body: JSON.stringify(request)});
    if (!body) return;
    $('output').textContent = body.translation;
    if (body.attention) showAttention(body.attention); else $('attention-map').innerHTML = '';
  };
}
({classification: setUpClassifier, 'language-model': setUpLanguageModel, seq2seq: setUpTranslation})[TASK]();
"""

SECTIONS = {"classification": CLASSIFIER, "language-model": LANGUAGE_MODEL, "seq2seq": TRANSLATION}


def metrics_line(facts: dict[str, Any]) -> str:
    """``val_acc 0.9722, test_acc 0.9444`` from the record the run is judged by (best, else final)."""
    record = facts.get("best_metrics") or facts.get("final_metrics") or {}
    shown = [f"{k} {v:.4f}" for k, v in record.items() if k.split("_")[0] in ("val", "test") and isinstance(v, float)]
    return ", ".join(shown[:4])


def page_html(facts: dict[str, Any]) -> str:
    """The page for a run with these ``/info`` facts."""
    title = html.escape(f"{facts['model']} on {facts['data']}")
    about = html.escape(f"{facts['task']} · {facts['checkpoint']} · {facts['epochs']} epochs · {metrics_line(facts)}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>divekit: {title}</title>"
            f"<style>{STYLE}</style></head><body><h1>{title}</h1><div class='facts'>{about} · "
            f"<a href='/docs'>API</a></div><div id='error'></div>{SECTIONS[facts['task']]}"
            f"<script>const TASK = {json.dumps(facts['task'])};{SCRIPT}</script></body></html>")  # fmt: skip
