from __future__ import annotations

import subprocess
import sys

import mlwf_nb.data as data


def test_all_names_resolve():
    assert set(data.__all__) == set(data._WHERE)
    for name in data.__all__:
        if name != "ShardSequence":
            assert getattr(data, name) is not None


def test_import_is_light():
    code = ("import sys, mlwf_nb.data as d; d.Dataset; d.split_scenes; d.write_shard; "
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
