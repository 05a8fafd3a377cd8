"""HTML pieces of :mod:`speechgap.report.html`: the numbers they are given, every text value escaped."""

from __future__ import annotations

import copy
import re

import pytest

from speechgap.report.html import fixes_table, result_table

FIXES = {
    "n": 64,
    "interventions": {
        "angle": {
            "settings": {"method": "angle", "tokens": "bottom-3"},
            "baseline_accuracy": 0.5,
            "treated_accuracy": 0.546875,
            "delta": 0.046875,
            "delta_ci": [-0.0125, 0.1094],
            "mcnemar_p": 0.2891,
            "changed": 7,
            "n": 64,
        },
        "length": {
            "settings": {"method": "length"},
            "baseline_accuracy": 0.5,
            "treated_accuracy": 0.484375,
            "delta": -0.015625,
            "delta_ci": [-0.06, 0.03],
            "mcnemar_p": 1.0,
            "changed": 3,
            "n": 64,
        },
    },
    "best_intervention": "angle",
    "compression": {
        "name": "dap_0.98",
        "spec": {"tau": 0.98, "deep_layer": 2, "deep_tau": 0.88},
        "baseline_accuracy": 0.5,
        "treated_accuracy": 0.515625,
        "delta": 0.015625,
        "delta_ci": [-0.02, 0.05],
        "retention": 0.4321,
        "prefill_flops_ratio": 0.7012,
        "ttft_ratio": 0.8123,
        "peak_memory_ratio": 0.9456,
        "kv_cache_ratio": 0.4444,
    },
}


def _rows(table: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", table)


def test_fixes_table_prints_percent_points_and_ratios():
    table = fixes_table(FIXES)
    rows = _rows(table)
    assert len(rows) == 1 + 2 + 1  # header, two interventions, merging
    assert "On 64 held-out questions" in table
    angle, length, merging = rows[1:]
    assert angle.startswith(
        "<td>angle projection (paper 1), Bottom-3 critical tokens at the input layer</td>"
    )
    assert "<td class=num>50.0</td><td class=num>54.7</td>" in angle
    assert "<td class=num>+4.7 [-1.2, +10.9]</td>" in angle
    assert "<td class=num>0.29</td>" in angle and "7 answers changed" in angle
    assert "<td class=num>-1.6 [-6.0, +3.0]</td>" in length and "<td class=num>1</td>" in length
    assert "input τ 0.98, layer 2 τ 0.88" in merging
    assert "<td class=num>50.0</td><td class=num>51.6</td>" in merging
    assert "speech tokens left 43.2%, prefill FLOPs 70.1%" in merging
    assert "time to first token ×0.81, peak memory ×0.95, KV cache ×0.44" in merging


def test_fixes_table_without_peak_memory_says_not_available():
    fixes = copy.deepcopy(FIXES)
    fixes["compression"]["peak_memory_ratio"] = None
    merging = _rows(fixes_table(fixes))[-1]
    assert "peak memory n/a, KV cache ×0.44" in merging


def test_fixes_table_escapes_text_values():
    fixes = copy.deepcopy(FIXES)
    fixes["compression"]["spec"]["deep_layer"] = "<script>alert(1)</script>"
    fixes["interventions"]["<b>custom</b>"] = fixes["interventions"].pop("length")
    table = fixes_table(fixes)
    assert "<script>" not in table and "<b>" not in table
    assert "layer &lt;script&gt;alert(1)&lt;/script&gt; τ 0.88" in table
    assert "<td>&lt;b&gt;custom&lt;/b&gt;, Bottom-3" in table


def test_result_table_escapes_cells_and_has_a_row_per_result():
    rows = [["colour", "90.0", "<i>70.0</i>"], ["a & b", 3, None]]
    table = result_table("gap <per subset>", ["subset", "text %", "speech %"], rows)
    assert table.count("<tr>") == len(rows) + 1
    assert "<caption>gap &lt;per subset&gt;</caption>" in table
    assert "<tr><th>subset</th><th>text %</th><th>speech %</th></tr>" in table
    assert "<td>&lt;i&gt;70.0&lt;/i&gt;</td>" in table and "<i>" not in table
    assert "<tr><td>a &amp; b</td><td>3</td><td>–</td></tr>" in table


def test_result_table_refuses_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 headers"):
        result_table("t", ["a", "b"], [["1", "2"], ["3"]])


def test_gap_table_names_both_overall_figures():
    from speechgap.report.html import gap_table

    summary = {
        "subsets": {
            "big": {"paired_n": 30, "text_score": 0.9, "speech_score": 0.6},
            "small": {"paired_n": 6, "text_score": 0.5, "speech_score": 0.5},
        },
        "macro": {"text_score": 0.7, "speech_score": 0.55, "gap": 0.15, "gap_low": 0.05, "gap_high": 0.25},
        "pooled": {"text_score": 0.8333, "speech_score": 0.5833, "gap": 0.25, "gap_low": 0.1, "gap_high": 0.4,
                   "mcnemar_p": 0.01, "n": 36},
    }  # fmt: skip
    table = gap_table(summary)
    macro_row = next(row for row in table.split("<tr") if "macro" in row)
    pooled_row = next(row for row in table.split("<tr") if "pooled" in row)
    assert "55.0" in macro_row and "[5.0, 25.0]" in macro_row and ">2<" in macro_row
    assert "58.3" in pooled_row and ">36<" in pooled_row and "0.01" in pooled_row
    old = {"subsets": summary["subsets"], "overall": summary["macro"]}  # written before the two names existed
    assert "macro" in gap_table(old) and "pooled" not in gap_table(old)
