"""VoiceBench from a huggingface-cli copy (parquet), save_to_disk folders and the Hub name (mocked)."""

from __future__ import annotations

import numpy as np
import pytest
from data_samples import VOICEBENCH_LAYOUT, hf_dataset, pcm16_reference, voicebench_rows, write_parquet

from speechgap.data import voicebench
from speechgap.data.voicebench import load_voicebench
from speechgap.errors import DataError


def test_sd_qa_region_maps_prompt_reference_and_audio(voicebench_dir):
    dataset = load_voicebench(voicebench_dir, subset="sd-qa", split="usa")
    rows = voicebench_rows("sd-qa", "usa", 5, 0)
    assert len(dataset) == 5 and dataset.ids == rows["id"]
    for i, sample in enumerate(dataset):
        assert sample.text == rows["prompt"][i]
        assert sample.answer == rows["reference"][i] and sample.meta["reference"] == rows["reference"][i]
        assert sample.meta["split"] == "usa" and sample.subset == "sd-qa" and sample.choices is None
        np.testing.assert_array_equal(sample.audio, pcm16_reference(rows["audio"][i]["bytes"]))
    assert dataset.source == {
        "loader": "voicebench",
        "path": str(voicebench_dir.resolve()),
        "subset": "sd-qa",
        "split": "usa",
        "splits": ["usa"],
    }


def test_all_regions_get_split_prefixed_ids(voicebench_dir):
    dataset = load_voicebench(voicebench_dir, subset="sd-qa")
    assert len(dataset) == sum(VOICEBENCH_LAYOUT["sd-qa"].values())
    assert dataset.ids[:3] == ["gbr/q0", "gbr/q1", "gbr/q2"] and dataset.ids[3] == "usa/q0"
    assert dataset[3].meta["split"] == "usa"


def test_mcq_subsets_parse_choices_and_answer_letter(voicebench_dir):
    dataset = load_voicebench(voicebench_dir, subset="mmsu", split="law")
    sample = dataset[1]
    assert sample.choices == ["first 1", "second 1", "third 1", "fourth 1"]
    assert sample.answer == "B" and sample.meta["reference"] == "B" and sample.meta["choices_parsed"]
    every_subject = load_voicebench(voicebench_dir, subset="mmsu")
    assert len(every_subject) == 7 and every_subject.source["splits"] == ["biology", "law"]
    openbook = load_voicebench(voicebench_dir, subset="openbookqa")
    assert [s.answer for s in openbook] == ["A", "B", "C", "D", "A"]


def test_ifeval_fields_are_kept_in_meta(voicebench_dir):
    sample = load_voicebench(voicebench_dir, subset="ifeval")[2]
    assert sample.meta["key"] == 1002
    assert sample.meta["instruction_id_list"] == ["length_constraints:number_sentences"]
    assert sample.meta["kwargs"] == [{"num_sentences": 4, "relation": "at least"}]
    assert sample.answer is None and sample.id == "2"  # no id column: the row index


def test_sharded_split_reads_rows_in_order(voicebench_dir):
    dataset = load_voicebench(voicebench_dir, subset="wildvoice", split="test")
    rows = voicebench_rows("wildvoice", "test", 5, 99)
    assert [s.text for s in dataset] == rows["prompt"]
    # Row groups hold 2 rows and files 3 + 2: reading backwards exercises every group boundary.
    for i in reversed(range(5)):
        np.testing.assert_array_equal(dataset[i].audio, pcm16_reference(rows["audio"][i]["bytes"]))


def test_audio_is_read_lazily(voicebench_dir, monkeypatch):
    calls = []
    real = voicebench.load_audio
    monkeypatch.setattr(voicebench, "load_audio", lambda *a, **k: calls.append(k["where"]) or real(*a, **k))
    dataset = load_voicebench(voicebench_dir, subset="mmsu")
    assert calls == []
    dataset[5]
    assert calls == [
        f"voicebench/mmsu/law row 1, column 'audio' ({voicebench_dir / 'mmsu' / 'law-00000-of-00001.parquet'})"
    ]


def test_save_to_disk_dataset_dict_and_dataset_match_parquet(voicebench_dir, voicebench_disk):
    from_disk = load_voicebench(voicebench_disk, subset="sd-qa", split="usa")
    from_parquet = load_voicebench(voicebench_dir, subset="sd-qa", split="usa")
    assert from_disk.ids == from_parquet.ids
    np.testing.assert_array_equal(from_disk[4].audio, from_parquet[4].audio)
    assert from_disk[4].answer == from_parquet[4].answer
    whole = load_voicebench(voicebench_disk / "sd-qa", subset="sd-qa")  # the DatasetDict folder itself
    assert len(whole) == 8 and whole.ids[0] == "gbr/q0"
    single = load_voicebench(voicebench_disk / "openbookqa", subset="openbookqa")
    assert [s.answer for s in single] == ["A", "B", "C", "D", "A"] and single[0].choices[0] == "first 0"
    with pytest.raises(DataError, match="does not say which VoiceBench subset"):
        load_voicebench(voicebench_disk / "openbookqa")


def test_subset_folder_can_be_given_directly(voicebench_dir):
    dataset = load_voicebench(voicebench_dir / "sd-qa", split="gbr")
    assert dataset.source["subset"] == "sd-qa" and len(dataset) == 3


def test_hub_name_goes_through_datasets_load_dataset(monkeypatch):
    import datasets

    seen = {}

    def fake(name, config, split):
        seen.update(name=name, config=config, split=split)
        return datasets.DatasetDict({"usa": hf_dataset(voicebench_rows("sd-qa", "usa", 2, 0))})

    monkeypatch.setattr(voicebench, "_load_hub_dataset", fake)
    dataset = load_voicebench("hlt-lab/voicebench", subset="sd-qa", split="usa")
    assert seen == {"name": "hlt-lab/voicebench", "config": "sd-qa", "split": "usa"}
    assert dataset.source["path"] == "hlt-lab/voicebench" and dataset[1].text == "Where is city number 1?"
    with pytest.raises(DataError, match="unknown subset 'nope'.*advbench"):
        load_voicebench("hlt-lab/voicebench", subset="nope")


def test_unknown_subset_and_split_list_what_exists(voicebench_dir):
    with pytest.raises(
        DataError, match="unknown subset 'sdqa'; available: ifeval, mmsu, openbookqa, sd-qa, wildvoice"
    ):
        load_voicebench(voicebench_dir, subset="sdqa")
    with pytest.raises(DataError, match="unknown split 'xyz'; available: gbr, usa"):
        load_voicebench(voicebench_dir, subset="sd-qa", split="xyz")
    with pytest.raises(DataError, match="say which subset"):
        load_voicebench(voicebench_dir)
    with pytest.raises(DataError, match="no such folder"):
        load_voicebench(voicebench_dir / "missing")


def test_bad_files_and_rows(tmp_path):
    lfs = tmp_path / "vb" / "sd-qa" / "usa-00000-of-00001.parquet"
    lfs.parent.mkdir(parents=True)
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 79400000\n")
    with pytest.raises(DataError, match="Git LFS pointer"):
        load_voicebench(tmp_path / "vb", subset="sd-qa")

    rows = voicebench_rows("mmsu", "law", 3, 0)
    rows["audio"][1] = {"bytes": b"not audio", "path": "1.wav"}
    write_parquet(rows, tmp_path / "bad" / "mmsu" / "law-00000-of-00001.parquet")
    dataset = load_voicebench(tmp_path / "bad", subset="mmsu")
    dataset[0]
    with pytest.raises(DataError, match=r"voicebench/mmsu/law row 1, column 'audio'.*cannot decode"):
        dataset[1]

    rows = voicebench_rows("mmsu", "law", 3, 0)
    rows["reference"][2] = "maybe"
    write_parquet(rows, tmp_path / "ref" / "mmsu" / "law-00000-of-00001.parquet")
    with pytest.raises(DataError, match=r"law row 2.*field 'reference'.*'maybe' is not an option letter"):
        load_voicebench(tmp_path / "ref", subset="mmsu")

    rows = voicebench_rows("sd-qa", "usa", 2, 0)
    del rows["prompt"]
    write_parquet(rows, tmp_path / "col" / "sd-qa" / "usa-00000-of-00001.parquet")
    with pytest.raises(DataError, match="missing column 'prompt'"):
        load_voicebench(tmp_path / "col", subset="sd-qa")

    rows = voicebench_rows("sd-qa", "usa", 2, 0)
    rows["id"] = ["same", "same"]
    write_parquet(rows, tmp_path / "dup" / "sd-qa" / "usa-00000-of-00001.parquet")
    with pytest.raises(DataError, match="duplicate id 'same'.*row 0"):
        load_voicebench(tmp_path / "dup", subset="sd-qa")
