// The sample view: question, gold answer, both answers, the fixes' answers, then the player and the matrix.

function fillAnswer(box, answer) {
  const get = (key) => (answer ? answer[key] : null);
  setText(box.querySelector(".sgx-response"), answer ? get("response") : "no run");
  setText(box.querySelector(".sgx-extracted"), get("extracted"));
  const correct = get("correct");
  box.querySelector(".sgx-correct").textContent = correct === null ? "not scored" : mark(correct);
  setText(box.querySelector(".sgx-parsed"), mark(get("parsed")));
  box.dataset.correct = correct === null ? "" : String(correct);
}

function fillFixes(table, fixes) {
  const body = table.tBodies[0];
  body.replaceChildren();
  const labels = Object.keys(fixes || {}).sort();
  table.hidden = labels.length === 0;
  for (const label of labels) {
    const answer = fixes[label] || {};
    const row = document.createElement("tr");
    row.dataset.fix = label;
    for (const [css, value] of [["sgx-label", label], ["sgx-extracted", answer.extracted],
      ["sgx-correct", answer.correct === null || answer.correct === undefined ? "not scored" : mark(answer.correct)],
      ["sgx-parsed", mark(answer.parsed)]]) {
      const cell = document.createElement("td");
      cell.className = css;
      setText(cell, value);
      row.appendChild(cell);
    }
    body.appendChild(row);
  }
}

function createView(samples) {
  const view = $("sgx-view");
  const slider = $("sgx-layer"), layerLabel = $("sgx-layer-label");
  const showArgmax = $("sgx-show-argmax"), showDtw = $("sgx-show-dtw");
  const canvas = $("sgx-matrix"), noMatrix = $("sgx-no-matrix");
  const matrix = createMatrix(canvas, $("sgx-playhead"), $("sgx-tooltip"));
  const player = createPlayer($("sgx-audio"), $("sgx-words"), $("sgx-no-audio"), (t) => matrix.showTime(t));
  let sample = null, chosenLayer = null;

  function labelLayer() {
    const k = Number(slider.value);
    layerLabel.textContent = "layer " + sample.layers[k] + " (" + (k + 1) + " of " + sample.layers.length + ")";
  }

  slider.addEventListener("input", () => {
    if (!sample || !sample.shape) return;
    chosenLayer = sample.layers[Number(slider.value)];
    labelLayer();
    matrix.setLayer(Number(slider.value));
  });
  const overlays = () => sample && sample.shape && matrix.setOverlays(showArgmax.checked, showDtw.checked);
  showArgmax.addEventListener("change", overlays);
  showDtw.addEventListener("change", overlays);
  let resizing = false;
  window.addEventListener("resize", () => {
    if (resizing || !sample || !sample.shape) return;
    resizing = true;
    requestAnimationFrame(() => { resizing = false; matrix.draw(); });
  });

  function open(index) {
    sample = samples[index];
    view.hidden = false;
    view.dataset.index = String(index);
    $("sgx-title").textContent = "Sample " + sample.id
      + (sample.subset ? " · " + sample.subset : "") + (sample.speaker ? " · " + sample.speaker : "");
    $("sgx-question").textContent = sample.question;
    setText($("sgx-gold"), sample.gold);
    fillAnswer($("sgx-answer-text"), sample.text);
    fillAnswer($("sgx-answer-speech"), sample.speech);
    fillFixes($("sgx-fixes"), sample.fixes);
    $("sgx-tooltip").hidden = true;

    const m = matrices(sample, index);
    canvas.hidden = !m;
    noMatrix.hidden = Boolean(m);
    slider.disabled = !m;
    if (m) {
      // keep the layer chosen before when this sample has it
      const k = Math.max(0, sample.layers.indexOf(chosenLayer));
      slider.max = String(m.L - 1);
      slider.value = String(k);
      labelLayer();
      matrix.show(sample, m, frameTimes(sample), k);
    } else {
      layerLabel.textContent = "";
      $("sgx-playhead").hidden = true;
    }
    player.show(sample);
  }

  return { open };
}
