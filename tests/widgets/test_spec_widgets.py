"""Headless tests of the spec-editing widgets: build, set a trait, assert on the spec and outputs."""

from __future__ import annotations

import numpy as np
import pytest

from mlwf_nb.data.synth import generate_dataset
from mlwf_nb.widgets import (
    AugmentationPreview,
    DatasetPicker,
    HPOConfigurator,
    PatchExplorer,
    SpecModel,
    Studio,
    space_problems,
)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("ds") / "tiny", scenes=4, height=96, width=96,
                            sources=["GF-2", "GF-1"], seed=0)


def test_spec_model_sets_and_reports_errors():
    model = SpecModel("tiny")
    seen = []
    model.observe(lambda c: seen.append(c["new"].train.epochs), names="spec")
    assert model.set("train.epochs", 5)
    assert model.spec.train.epochs == 5 and seen == [5]
    assert not model.set("train.epochs", -1)
    assert model.spec.train.epochs == 5
    assert "train.epochs" in model.error and "train.epochs" in model.errors
    assert model.set("train.epochs", 3) and model.error == "" and not model.errors


def test_dataset_picker_table_split_and_generate(dataset_dir, tmp_path):
    model = SpecModel("tiny")
    picker = DatasetPicker(model)
    picker.path = str(dataset_dir)
    assert model.spec.dataset.path == str(dataset_dir)
    assert picker.dataset is not None and len(picker.dataset.scenes) == 4
    assert "GF-2_000" in picker._table.value and "%" in picker._table.value
    assert sum(len(v) for v in picker.split.values()) == 4
    model.update({"split.train": 0.5, "split.val": 0.5, "split.test": 0.0})
    assert picker.split["test"] == []
    picker.path = str(tmp_path / "new")
    assert picker.dataset is None and "Generate synthetic" in picker.error
    model.update({"dataset.scenes": 2, "dataset.height": 64, "dataset.width": 64})
    picker.generate()
    assert picker.error == "" and len(picker.dataset.scenes) == 2
    assert "manifest.json present" in picker.integrity
    picker.check_integrity()
    assert picker.integrity == "all files match the manifest"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a dataset")
    picker.path = str(tmp_path / "other")  # a folder of other files: never filled with synthetic scenes
    picker.generate()
    assert picker.dataset is None and "refusing to write a synthetic dataset" in picker.error


def test_patch_explorer_reads_patch_and_validates_size(dataset_dir):
    model = SpecModel("tiny")
    from mlwf_nb.data.dataset import Dataset

    explorer = PatchExplorer(model, Dataset.open(dataset_dir), thumb_size=48)
    assert explorer.scene == "GF-2_000"
    assert explorer.size in model.spec.patches.sizes
    explorer.size = 32
    explorer.y, explorer.x = 10, 20
    assert explorer.patch.shape == (32, 32, 4) and explorer.patch.dtype == np.uint8
    assert explorer._thumb.step == 2 and explorer._patch_img.value[:4] == b"\x89PNG"
    with pytest.raises(Exception, match=r"patches\.sizes"):
        explorer.size = 50
    model.set("patches.sizes", [8, 24])
    assert list(v for _, v in explorer._size.options) == [8, 24] and explorer.size in (8, 24)


def test_augmentation_preview_edits_spec_and_reseeds():
    model = SpecModel("tiny")
    patch = np.random.default_rng(0).integers(0, 255, (16, 16, 4), dtype=np.uint8)
    aug = AugmentationPreview(model, patch=patch)
    first = aug.preview.copy()
    assert first.shape == (8, 16, 16, 4)
    aug._controls["rotation"].value = 0.25
    aug._controls["flip"].value = "vertical"
    assert model.spec.augment.rotation == 0.25 and model.spec.augment.flip == "vertical"
    model.set("augment.zoom", 0.2)
    assert aug._controls["zoom"].value == 0.2
    before = aug.preview.copy()
    aug.reseed()
    assert aug.seed == 1 and aug.preview.shape == before.shape
    assert aug.reference is None
    aug.compare = True  # the same draws through the Keras layers, in a second row
    assert aug.reference.shape == aug.preview.shape and aug._beside_keras.value is True
    assert aug.reference.dtype == np.uint8 and not np.array_equal(aug.reference, aug.preview)  # three resamplings
    aug._beside_keras.value = False
    assert aug.reference is None


@pytest.mark.parametrize(("rows", "needle"), [
    ([{"name": "train.learning_rate", "type": "float", "min": 1e-2, "max": 1e-4}], "swap"),
    ([{"name": "model.name", "type": "choice", "choices": []}], "at least one choice"),
    ([{"name": "train.learning_rate", "type": "float", "min": 0.0, "max": 1.0, "log": True}], "log scale"),
    ([{"name": "", "type": "int", "min": 1, "max": 2}], "key path"),
])
def test_hpo_invalid_rows_show_error_state(rows, needle):
    model = SpecModel("tiny")
    hpo = HPOConfigurator(model)
    hpo.strategy = "random"
    hpo.set_rows(rows)
    assert not hpo.valid and any(needle in p for p in hpo.problems)
    assert "mlwf-error" in hpo._error.value
    assert model.spec.hpo.space == []  # the spec is left as it was
    assert space_problems(rows)


def test_hpo_valid_rows_update_spec():
    model = SpecModel("tiny")
    hpo = HPOConfigurator(model)
    hpo.set_rows([{"name": "train.learning_rate", "type": "float", "min": 1e-4, "max": 1e-2, "log": True},
                  {"name": "model.width", "type": "choice", "choices": [8, 16]}])
    hpo.strategy = "bayesian"
    hpo.trials = 6
    assert hpo.valid and hpo._error.value == ""
    h = model.spec.hpo
    assert h.strategy == "bayesian" and h.trials == 6 and len(h.space) == 2
    assert h.space[1].choices == [8, 16]
    hpo._rows.children[1].c_choices.value = "8, 16, 32"
    assert model.spec.hpo.space[1].choices == [8, 16, 32]
    with pytest.raises(Exception, match="trials"):
        hpo.trials = 0


def test_studio_run_button_submits_and_attaches_monitor(tmp_path):
    calls = []

    def fake_submit(spec, backend, run_dir):
        calls.append((spec, backend))
        (tmp_path / "events.jsonl").write_text('{"v":1,"seq":1,"type":"run_started"}\n'
                                               '{"v":1,"seq":2,"type":"run_finished","state":"Success"}\n')
        return tmp_path

    studio = Studio("tiny", submit=fake_submit)
    studio.model.set("train.epochs", 4)
    monitor = studio.start_run()
    assert calls[0][0].train.epochs == 4 and calls[0][1] == "local"
    assert monitor is studio.monitor and studio._monitor_box.children == (monitor,)
    assert monitor.wait(timeout=60, show=False) == "Success"
    assert "train:" in studio._spec_view.value.replace(" ", "") or "epochs: 4" in studio._spec_view.value


def test_a_run_that_cannot_start_raises_from_a_cell_and_shows_in_the_run_tab(tmp_path):
    """start_run from a cell stops it with the typed error (no monitor of nothing); the button shows it."""
    from mlwf_nb.errors import DatasetError

    def refusing_submit(spec, backend, run_dir):
        raise DatasetError(f"dataset.path {spec.dataset.path!r} does not exist")

    studio = Studio("tiny", submit=refusing_submit)
    studio.model.set("dataset.path", str(tmp_path / "typo"))
    with pytest.raises(DatasetError, match="typo' does not exist"):
        studio.start_run(in_tab=False)
    assert studio.monitor is None and "typo&#x27; does not exist" in studio._error.value
    studio.error = ""
    studio._run_btn.click()  # the button: no exception escapes into the event loop, the tab says why
    assert studio.monitor is None and "typo&#x27; does not exist" in studio._error.value
    assert not studio._run_btn.disabled


def test_a_gid_download_shows_in_its_own_band_order_and_label_colours(tmp_path):
    """NIR,R,G,B images: true colour from bands 1,2,3; GID's RGB labels decoded for the overlay."""
    from mlwf_nb.data.dataset import Dataset
    from mlwf_nb.views import scenes as views
    from tests.gid_download import SCENES, write_gid_download

    root = write_gid_download(tmp_path / "gid", size=32)
    model = SpecModel("tiny")
    picker = DatasetPicker(model)
    picker.path = str(root)
    assert picker.error == "" and picker.dataset is not None and model.spec.dataset.synthetic is False
    explorer = PatchExplorer(model, Dataset.open(root), thumb_size=32)
    explorer.size, explorer.y, explorer.x = 16, 8, 8
    assert explorer.rgb_bands == (1, 2, 3)
    thumb = views.read_thumbnail(picker.dataset, sorted(SCENES)[0], 32)
    np.testing.assert_array_equal(thumb.label, np.asarray(picker.dataset.open_label(sorted(SCENES)[0])))
    true_c, false_c = views.rgb_views(thumb.image, explorer._stretch, 0, (1, 2, 3), (0, 1, 2))
    u8 = np.asarray(views.apply_stretch(thumb.image, explorer._stretch, axis=0, nodata=0))
    np.testing.assert_array_equal(true_c, np.moveaxis(u8[[1, 2, 3]], 0, -1))
    np.testing.assert_array_equal(false_c[..., 0], u8[0])  # NIR shows as red in false colour
    studio = Studio("tiny")
    studio.picker.path = str(root)
    assert studio.patches.rgb_bands == (1, 2, 3) and studio.augment.rgb_bands == (1, 2, 3)
