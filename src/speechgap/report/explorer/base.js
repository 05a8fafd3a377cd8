// Shared helpers: the clock, the page's data, decoding of the quantized matrices, time <-> frame lookups.
// Text from the data reaches the page only through textContent and canvas fillText, never as markup.

const scriptStart = performance.now();

const $ = (id) => document.getElementById(id);

function setText(element, value) {
  element.textContent = value === null || value === undefined || value === "" ? "–" : String(value);
}

function mark(value) {
  return value === null || value === undefined ? "–" : value ? "✓" : "✗";
}

function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// One sample's matrices, decoded once when it is first opened: q[(layer * F + frame) * T + token] in 0..255,
// value = lo + (hi - lo) * q / 255 (within (hi - lo) / 510 of the computed similarity).
const decodedMatrices = new Map();

function matrices(sample, index) {
  if (!sample.shape) return null;
  if (!decodedMatrices.has(index)) {
    const [L, F, T] = sample.shape;
    const q = decodeBase64(sample.sim_q);
    const range = [];
    for (let l = 0; l < L; l++) {
      let low = 255, high = 0;
      for (let k = l * F * T; k < (l + 1) * F * T; k++) {
        if (q[k] < low) low = q[k];
        if (q[k] > high) high = q[k];
      }
      range.push([low, high]);
    }
    decodedMatrices.set(index, { L, F, T, q, range, lo: sample.sim_lo, hi: sample.sim_hi });
  }
  return decodedMatrices.get(index);
}

function similarity(m, layer, frame, token) {
  return m.lo + ((m.hi - m.lo) * m.q[(layer * m.F + frame) * m.T + token]) / 255;
}

// (F, 2) start / end seconds of each frame: the sample's own, or the clip cut evenly when it has none.
function frameTimes(sample) {
  if (sample.frame_times) return sample.frame_times;
  if (!sample.shape || !sample.duration_s) return null;
  const F = sample.shape[1], width = sample.duration_s / F;
  return Array.from({ length: F }, (_, f) => [f * width, (f + 1) * width]);
}

// The frame spoken at time t (seconds) and how far into it (0..1); null outside the frames.
function frameAt(times, t) {
  if (!times || !times.length || t < times[0][0] || t > times[times.length - 1][1]) return null;
  let low = 0, high = times.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (times[mid][0] <= t) low = mid; else high = mid - 1;
  }
  const [start, end] = times[low];
  return { frame: low, fraction: end > start ? Math.min(1, (t - start) / (end - start)) : 0 };
}

// The word spoken over [start, end]: the one overlapping the span most; -1 when none does.
function wordOver(words, start, end) {
  let best = -1, bestOverlap = 0;
  for (let w = 0; w < words.length; w++) {
    const overlap = Math.min(end, words[w][2]) - Math.max(start, words[w][1]);
    if (overlap > bestOverlap) { best = w; bestOverlap = overlap; }
  }
  return best;
}

function wordAt(words, t) {
  for (let w = 0; w < words.length; w++) if (words[w][1] <= t && t < words[w][2]) return w;
  return -1;
}

function seconds(t) {
  return t.toFixed(2) + " s";
}
