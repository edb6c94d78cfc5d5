"""RunSpec round-trips and validates; the data split and batch order are the same in every process."""
import json
import subprocess
import sys

import numpy as np
import pytest

from trainers import data
from twinboard.contract import RunSpec, SpecError


def test_json_round_trip_keeps_every_field():
    spec = RunSpec(task="spirals", hidden=(16, 8), optimizer="adam", embedding_steps=[5, 10], dtype="float64")
    back = RunSpec.from_json(spec.to_json())
    assert back == spec
    assert back.hidden == (16, 8) and back.embedding_steps == (5, 10)
    assert json.loads(spec.to_json())["hidden"] == [16, 8]


@pytest.mark.parametrize("change, field", [
    ({"task": "mnist"}, "task"), ({"lr": -1.0}, "lr"), ({"batch_size": 0}, "batch_size"),
    ({"hidden": (0,)}, "hidden"), ({"model": "cnn", "task": "spirals"}, "model"),
    ({"val_fraction": 1.5}, "val_fraction"), ({"epochs": "3"}, "epochs"), ({"dtype": "float16"}, "dtype"),
    ({"seed": -1}, "seed"), ({"weight_decay": float("nan")}, "weight_decay"), ({"threads": 10**6}, "threads"),
])
def test_bad_values_name_field_and_value(change, field):
    with pytest.raises(SpecError) as err:
        RunSpec(**change)
    assert f"RunSpec.{field}=" in str(err.value)
    assert repr(change[field]) in str(err.value) or str(change[field]) in str(err.value)


def test_unknown_field_is_refused():
    with pytest.raises(SpecError, match="no field 'colour'"):
        RunSpec.from_dict({"colour": "red"})


@pytest.mark.parametrize("task", ["digits", "spirals", "regression"])
def test_split_is_disjoint_and_typed(task):
    spec = RunSpec(task=task, dtype="float64")
    ds = data.load(spec)
    assert ds.x_train.dtype == np.float64 and len(ds.x_train) == len(ds.y_train)
    n = len(ds.x_train) + len(ds.x_val)
    assert abs(len(ds.x_val) - round(n * spec.val_fraction)) <= 1
    assert ds.n_classes == {"digits": 10, "spirals": 2, "regression": 0}[task]


def test_batches_cover_each_epoch_once_and_stop_at_steps():
    spec = RunSpec(epochs=2, batch_size=32)
    n = 100
    got = list(data.batches(spec, n))
    assert [s for s, _, _ in got] == list(range(1, 7))  # 3 full batches per epoch, short one dropped
    first_epoch = np.concatenate([idx for _, e, idx in got if e == 0])
    assert len(set(first_epoch)) == 96
    assert len(list(data.batches(spec.replace(steps=8), n))) == 8


def test_same_batches_in_a_fresh_process():
    """The order must not depend on process state: both trainers derive it independently."""
    spec = RunSpec(task="spirals", seed=7, epochs=1)
    here = [idx.tolist() for _, _, idx in data.batches(spec, 800)][:3]
    code = ("from trainers import data; from twinboard.contract import RunSpec; import json;"
            "s=RunSpec(task='spirals', seed=7, epochs=1);"
            "print(json.dumps([i.tolist() for _,_,i in data.batches(s, 800)][:3]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here
