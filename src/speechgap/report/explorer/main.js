// Start: read the data, wire the table to the sample view, record how long it took.

const timings = { open_ms: null, page_ms: null, last_draw_ms: null, draw_ms: [] };
window.speechgapExplorer = { timings };

const data = JSON.parse($("sgx-data").textContent);
const view = createView(data.samples);
let opened = false;

setupTable(data.samples, (index) => {
  const start = performance.now();
  view.open(index);
  timings.last_draw_ms = performance.now() - start;
  timings.draw_ms.push(timings.last_draw_ms);
  if (!opened) {
    opened = true;
    $("sgx-view").scrollIntoView({ block: "nearest" });
  }
});

timings.page_ms = performance.now();
timings.open_ms = timings.page_ms - scriptStart;
