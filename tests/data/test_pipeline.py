"""The data layer end to end on a tiny dataset: split, stretch, patches, shards, windows."""

from __future__ import annotations

import numpy as np

from mlwf_nb.data import (
    Dataset,
    ShardBatches,
    apply_stretch,
    class_counts,
    class_map,
    extract_windows,
    fit_stretch,
    sample_patches,
    sliding_windows,
    split_scenes,
    stitch_probabilities,
    write_shard,
)


def test_tiny_pipeline(tiny_dataset, tmp_path):
    ds = Dataset.open(tiny_dataset)
    ds.check()
    split = split_scenes([(s.id, s.source) for s in ds.scenes], 0.5, 0.25, 0.25, seed=0)
    assert {len(v) for v in split.values()} == {1, 2}
    by_source = {src: fit_stretch([ds.open_image(i) for i in ids if i in split["train"]])
                 for src, ids in ds.scenes_by_source().items()}
    prefixes = []
    for sid in split["train"]:
        src = ds.scene(sid).source
        img = apply_stretch(ds.open_image(sid), by_source[src], nodata=ds.nodata)
        hwc = np.moveaxis(img.values, 0, -1)
        label = ds.open_label(sid).values
        X, y, _ = sample_patches(hwc, label, [8, 16], 30, 8, 0.6, True,
                                    np.random.default_rng(0), ds.num_classes)
        assert X.dtype == np.uint8 and 0 < len(X) <= 30 and y.max() < ds.num_classes
        write_shard(tmp_path / sid, X, y, {"scene": sid, "source": src})
        prefixes.append(tmp_path / sid)
    batches = ShardBatches(prefixes, 16, seed=0)
    assert sum(class_counts(prefixes).values()) == batches.total == sum(len(b[1]) for b in
                                                                       (batches[i] for i in range(len(batches))))
    # inference side: perfect "model" = the label under each window's centre
    sid = split["test"][0]
    label = ds.open_label(sid).values
    wins = sliding_windows(*label.shape, 4, 4)
    tiles = extract_windows(np.moveaxis(ds.open_image(sid).values, 0, -1), wins, 4, 4)
    assert tiles.shape == (len(wins), 4, 4, 4)
    probs = np.eye(ds.num_classes)[[max(label[y + 2, x + 2], 1) - 1 for y, x in wins]]
    pred = class_map(stitch_probabilities(*label.shape, wins, 4, probs))
    assert pred.shape == label.shape and (pred == label)[label > 0].mean() > 0.5
