// The sample table (rendered by Python): sort by a header, filter by subset, cell and a search text.

function setupTable(samples, onOpen) {
  const table = $("sgx-table");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const haystacks = rows.map((row) => {
    const sample = samples[Number(row.dataset.index)];
    return (sample.id + "\n" + sample.question).toLowerCase();
  });
  const subset = $("sgx-subset"), cell = $("sgx-cell"), search = $("sgx-search"), count = $("sgx-count");

  function filter() {
    const wantSubset = subset.value, wantCell = cell.value, words = search.value.toLowerCase().trim();
    let shown = 0;
    rows.forEach((row, k) => {
      const keep = (!wantSubset || row.dataset.subset === wantSubset)
        && (!wantCell || row.dataset.cell === wantCell)
        && (!words || haystacks[k].includes(words));
      row.hidden = !keep;
      if (keep) shown++;
    });
    count.textContent = shown + " of " + rows.length + " samples";
  }

  // Numbers numerically, text by locale; empty values last in either direction; ties keep data order.
  function sortBy(header) {
    const column = header.cellIndex, numeric = header.dataset.type === "number";
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    for (const other of header.parentNode.cells) other.setAttribute("aria-sort", "none");
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const keyed = rows.map((row) => {
      const raw = row.cells[column].dataset.sort;
      return { row, empty: raw === "", key: numeric ? Number(raw) : raw, order: Number(row.dataset.index) };
    });
    keyed.sort((a, b) => {
      if (a.empty !== b.empty) return a.empty ? 1 : -1;
      let c = 0;
      if (!a.empty) c = numeric ? a.key - b.key : a.key.localeCompare(b.key, undefined, { numeric: true });
      if (!ascending) c = -c;
      return c || a.order - b.order;
    });
    const fragment = document.createDocumentFragment();
    for (const item of keyed) fragment.appendChild(item.row);
    body.appendChild(fragment);
  }

  for (const header of table.tHead.rows[0].cells) {
    header.addEventListener("click", () => sortBy(header));
    header.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(header); }
    });
  }
  subset.addEventListener("change", filter);
  cell.addEventListener("change", filter);
  search.addEventListener("input", filter);

  let selected = null;
  function choose(row) {
    if (selected) { selected.classList.remove("sgx-selected"); selected.removeAttribute("aria-selected"); }
    selected = row;
    row.classList.add("sgx-selected");
    row.setAttribute("aria-selected", "true");
    onOpen(Number(row.dataset.index));
  }
  body.addEventListener("click", (event) => {
    const row = event.target.closest("tr.sgx-row");
    if (row) choose(row);
  });
  body.addEventListener("keydown", (event) => {
    const row = event.target.closest("tr.sgx-row");
    if (!row) return;
    if (event.key === "Enter") choose(row);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      let next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
      while (next && next.hidden) next = event.key === "ArrowDown" ? next.nextElementSibling : next.previousElementSibling;
      if (next) { next.focus(); choose(next); }
    }
  });

  $("sgx-controls").hidden = false;
  filter();
}
