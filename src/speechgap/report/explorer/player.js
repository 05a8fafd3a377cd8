// The clip and its words: the audio element plays the sample's data: URI; the word being spoken is
// highlighted and the matrix's playhead follows (timeupdate, seeks, and every animation frame while playing).

function createPlayer(audio, strip, noAudio, onTime) {
  let words = [], spans = [], current = -1, playing = false;

  function follow() {
    const t = audio.currentTime;
    const w = wordAt(words, t);
    if (w !== current) {
      if (current >= 0) spans[current].classList.remove("sgx-current");
      if (w >= 0) spans[w].classList.add("sgx-current");
      current = w;
    }
    onTime(t);
  }

  function tick() {
    follow();
    if (playing) requestAnimationFrame(tick);
  }

  function show(sample) {
    audio.pause();
    playing = false;
    if (sample.audio) {
      audio.src = "data:" + sample.audio_mime + ";base64," + sample.audio;
      audio.hidden = false;
      noAudio.hidden = true;
    } else {
      audio.removeAttribute("src");
      audio.load();
      audio.hidden = true;
      noAudio.hidden = false;
    }
    words = sample.words;
    current = -1;
    strip.replaceChildren();
    spans = words.map(([word, start, end]) => {
      const span = document.createElement("span");
      span.className = "sgx-word";
      span.textContent = word;
      span.dataset.start = String(start);
      span.dataset.end = String(end);
      span.title = seconds(start) + " – " + seconds(end);
      span.addEventListener("click", () => {
        if (!sample.audio) return;
        audio.currentTime = start;
        audio.play().catch(() => {});
      });
      strip.appendChild(span);
      return span;
    });
    onTime(0);
  }

  audio.addEventListener("timeupdate", follow);
  audio.addEventListener("seeked", follow);
  audio.addEventListener("play", () => { playing = true; requestAnimationFrame(tick); });
  audio.addEventListener("pause", () => { playing = false; follow(); });
  audio.addEventListener("ended", () => { playing = false; follow(); });
  return { show };
}
