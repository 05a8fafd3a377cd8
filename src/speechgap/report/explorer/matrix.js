// The speech × text similarity matrix of one layer on a canvas: speech frames left to right (time), text
// tokens top to bottom, the argmax and DTW paths on top, merging fixes' frame groups as bands below, a
// playhead over the frame being spoken and a tooltip for the cell under the pointer.

// matplotlib's magma, 17 stops, interpolated to 256 colours.
const MAGMA = ["#000004", "#0a0822", "#1d1147", "#36106b", "#51127c", "#6a1c81", "#832681", "#9c2e7f",
  "#b73779", "#d0416f", "#e75263", "#f56b5c", "#fc8961", "#fea772", "#fec488", "#fde2a3", "#fcfdbf"];

const COLOURS = (() => {
  const rgb = MAGMA.map((hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));
  const out = [];
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (rgb.length - 1), k = Math.min(rgb.length - 2, Math.floor(x)), w = x - k;
    const c = rgb[k].map((v, j) => Math.round(v + (rgb[k + 1][j] - v) * w));
    out.push("rgb(" + c.join(",") + ")");
  }
  return out;
})();

function tokenLabel(token) {
  const shown = token.replace(/\n/g, "⏎").replace(/\t/g, "⇥");
  const visible = shown.trim() === "" ? "␣".repeat(Math.max(1, shown.length)) : shown;
  return visible.length > 18 ? visible.slice(0, 17) + "…" : visible;
}

function bandLabel(label) {
  const shown = "merged: " + label;
  return shown.length > 24 ? shown.slice(0, 23) + "…" : shown;
}

function createMatrix(canvas, playhead, tooltip) {
  const context = canvas.getContext("2d");
  let state = null; // {sample, m, times, layer, argmax, dtw}
  let geometry = null; // {left, top, cellWidth, cellHeight, width, height}
  let draws = 0;

  function show(sample, m, times, layer) {
    state = { sample, m, times, layer, argmax: state ? state.argmax : true, dtw: state ? state.dtw : true };
    draw();
  }

  function setLayer(layer) { state.layer = layer; draw(); }

  function setOverlays(argmax, dtw) { state.argmax = argmax; state.dtw = dtw; draw(); }

  function xOfTime(t) {
    const at = frameAt(state.times, t);
    return at && geometry.left + (at.frame + at.fraction) * geometry.cellWidth;
  }

  function layout() {
    const { m, sample } = state;
    context.font = "11px sans-serif";
    let labelWidth = 40;
    const labels = sample.tokens.map(tokenLabel).concat(Object.keys(sample.merged || {}).map(bandLabel));
    for (const label of labels) labelWidth = Math.max(labelWidth, context.measureText(label).width);
    const left = Math.ceil(Math.min(150, labelWidth) + 10), top = 6, right = 70;
    const available = Math.max(300, canvas.parentNode.clientWidth) - left - right;
    const cellWidth = Math.max(3, Math.min(28, Math.floor(available / m.F)));
    const cellHeight = m.T <= 40 ? 15 : Math.max(4, Math.floor(600 / m.T));
    const bands = Object.keys(sample.merged || {}).length;
    const bandsTop = top + cellHeight * m.T + 6;
    const width = left + cellWidth * m.F + right;
    const height = bandsTop + bands * 15 + 30;
    return { left, top, right, cellWidth, cellHeight, bandsTop, width, height };
  }

  function draw() {
    const { m, sample, layer } = state;
    geometry = layout();
    const { left, top, cellWidth: cw, cellHeight: ch, bandsTop, width, height } = geometry;
    const scale = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    context.setTransform(scale, 0, 0, scale, 0, 0);
    context.clearRect(0, 0, width, height);

    // cells, coloured over this layer's own range
    const [qLow, qHigh] = m.range[layer];
    const span = Math.max(1, qHigh - qLow);
    const base = layer * m.F * m.T;
    for (let f = 0; f < m.F; f++) {
      for (let t = 0; t < m.T; t++) {
        context.fillStyle = COLOURS[Math.round((255 * (m.q[base + f * m.T + t] - qLow)) / span)];
        context.fillRect(left + f * cw, top + t * ch, cw, ch);
      }
    }
    const plotWidth = cw * m.F, plotHeight = ch * m.T;

    // word starts
    context.strokeStyle = "rgba(255,255,255,0.35)";
    context.lineWidth = 1;
    for (const [, start] of sample.words) {
      const x = xOfTime(start);
      if (x === null) continue;
      context.beginPath(); context.moveTo(x, top); context.lineTo(x, top + plotHeight); context.stroke();
    }

    const overlays = [];
    const centre = (f, t) => [left + (f + 0.5) * cw, top + (t + 0.5) * ch];
    if (state.dtw && sample.dtw) {
      overlays.push("dtw");
      const pairs = sample.dtw[layer];
      context.strokeStyle = "#00e5ff";
      context.lineWidth = 2;
      context.beginPath();
      for (let k = 0; k < pairs.length; k += 2) {
        const [x, y] = centre(pairs[k], pairs[k + 1]);
        if (k === 0) context.moveTo(x, y); else context.lineTo(x, y);
      }
      context.stroke();
    }
    if (state.argmax && sample.argmax) {
      overlays.push("argmax");
      const radius = Math.max(2, Math.min(5, 0.3 * Math.min(cw, ch)));
      context.fillStyle = "#39ff14";
      context.strokeStyle = "#000";
      context.lineWidth = 1;
      sample.argmax[layer].forEach((f, t) => {
        const [x, y] = centre(f, t);
        context.beginPath(); context.arc(x, y, radius, 0, 2 * Math.PI); context.fill(); context.stroke();
      });
    }

    // token labels
    context.fillStyle = "#222";
    context.font = "11px sans-serif";
    context.textAlign = "right";
    context.textBaseline = "middle";
    const every = Math.max(1, Math.ceil(11 / ch));
    sample.tokens.forEach((token, t) => {
      if (t % every === 0) context.fillText(tokenLabel(token), left - 6, top + (t + 0.5) * ch, left - 8);
    });

    // merging fixes: each group of frames merged into one token as a band, alternating shades
    Object.keys(sample.merged || {}).sort().forEach((label, row) => {
      const y = bandsTop + row * 15;
      context.fillStyle = "#222";
      context.textAlign = "right";
      context.fillText(bandLabel(label), left - 6, y + 6, left - 8);
      sample.merged[label].forEach((group, g) => {
        context.fillStyle = group.length > 1 ? (g % 2 ? "#4a7bd0" : "#a9c1ec") : "#e6e6e6";
        for (const f of group) context.fillRect(left + f * cw, y, cw, 12);
      });
    });

    // time axis in seconds
    const axis = bandsTop + Object.keys(sample.merged || {}).length * 15 + 2;
    context.fillStyle = "#555";
    context.strokeStyle = "#555";
    context.textAlign = "center";
    context.textBaseline = "top";
    if (state.times) {
      const end = state.times[state.times.length - 1][1];
      const tick = end > 8 ? 1 : end > 3 ? 0.5 : 0.25;
      for (let t = Math.ceil(state.times[0][0] / tick) * tick; t <= end + 1e-9; t += tick) {
        const x = xOfTime(Math.min(t, end));
        if (x === null) continue;
        context.beginPath(); context.moveTo(x, axis); context.lineTo(x, axis + 4); context.stroke();
        context.fillText(t.toFixed(2).replace(/0$/, ""), x, axis + 5);
      }
      context.textAlign = "left";
      context.fillText("s", left + plotWidth + 6, axis + 5);
    } else {
      context.fillText("speech frames →", left + plotWidth / 2, axis + 5);
    }

    // colour bar: this layer's range
    const barX = left + plotWidth + 10;
    for (let y = 0; y < plotHeight; y++) {
      context.fillStyle = COLOURS[Math.round(255 * (1 - y / Math.max(1, plotHeight - 1)))];
      context.fillRect(barX, top + y, 10, 1);
    }
    context.fillStyle = "#222";
    context.textAlign = "left";
    context.textBaseline = "top";
    const value = (q) => (m.lo + ((m.hi - m.lo) * q) / 255).toFixed(3);
    context.fillText(value(qHigh), barX + 13, top);
    context.textBaseline = "bottom";
    context.fillText(value(qLow), barX + 13, top + plotHeight);

    draws++;
    Object.assign(canvas.dataset, {
      layer: String(sample.layers[layer]), layerIndex: String(layer), frames: String(m.F),
      tokens: String(m.T), overlays: overlays.join(" "), draws: String(draws),
      plotLeft: String(left), plotTop: String(top), cellWidth: String(cw), cellHeight: String(ch),
    });
    playhead.style.top = top + "px";
    playhead.style.height = plotHeight + "px";
  }

  function showTime(t) {
    const x = state && geometry ? xOfTime(t) : null;
    playhead.hidden = x === null;
    if (x === null) return;
    playhead.style.left = x - 1 + "px";
    playhead.dataset.frame = String(frameAt(state.times, t).frame);
  }

  function hover(event) {
    if (!state || !geometry) return;
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left, y = event.clientY - box.top;
    const f = Math.floor((x - geometry.left) / geometry.cellWidth);
    const t = Math.floor((y - geometry.top) / geometry.cellHeight);
    const { m, sample, times, layer } = state;
    if (f < 0 || f >= m.F || t < 0 || t >= m.T) { tooltip.hidden = true; return; }
    const value = similarity(m, layer, f, t);
    const word = times ? wordOver(sample.words, times[f][0], times[f][1]) : -1;
    tooltip.querySelector(".sgx-tip-time").textContent = times
      ? "frame " + f + ": " + times[f][0].toFixed(2) + "–" + times[f][1].toFixed(2) + " s"
      : "frame " + f;
    tooltip.querySelector(".sgx-tip-word").textContent = word < 0 ? "(none)" : sample.words[word][0];
    tooltip.querySelector(".sgx-tip-token").textContent = sample.tokens[t];
    tooltip.querySelector(".sgx-tip-sim").textContent = value.toFixed(3);
    Object.assign(tooltip.dataset, { frame: String(f), token: String(t), sim: String(value) });
    tooltip.hidden = false;
    const wrap = canvas.parentNode.getBoundingClientRect();
    const px = event.clientX - wrap.left, py = event.clientY - wrap.top;
    const tipWidth = tooltip.offsetWidth;
    tooltip.style.left = (px + 16 + tipWidth > wrap.width ? px - 16 - tipWidth : px + 16) + "px";
    tooltip.style.top = py + 16 + "px";
  }

  canvas.addEventListener("mousemove", hover);
  canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  return { show, setLayer, setOverlays, showTime, draw: () => state && draw() };
}
