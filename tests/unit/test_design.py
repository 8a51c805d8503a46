import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.design import resolve_parameters, train_test_designs, unit_design
from surroflow.simulators.base import Parameter

P = [Parameter("nu", 0.01, 0.1, "m2 s-1", log_scale=True), Parameter("a", 0.5, 1.5, "m s-1")]


def section(**over):
    """A validated design section (the schema's defaults filled)."""
    return {"method": "sobol", "test_method": None, "seed": 0, "split": "separate", "batch_size": 16, **over}


@pytest.mark.parametrize("method", ["sobol", "lhs", "random"])
def test_designs_are_seeded_and_in_bounds(method):
    d1 = train_test_designs(P, section(method=method, n_train=20, n_test=5, seed=3))
    d2 = train_test_designs(P, section(method=method, n_train=20, n_test=5, seed=3))
    np.testing.assert_array_equal(d1["train"]["design"].values, d2["train"]["design"].values)
    for split in ("train", "test"):
        v = d1[split]["design"].values
        assert np.all(v[:, 0] >= 0.01) and np.all(v[:, 0] <= 0.1)
        assert np.all(v[:, 1] >= 0.5) and np.all(v[:, 1] <= 1.5)
    assert list(d1["train"]["parameter"].values) == ["nu", "a"]
    d3 = train_test_designs(P, section(method=method, n_train=20, n_test=5, seed=4))
    assert not np.allclose(d1["train"]["design"].values, d3["train"]["design"].values)


def test_random_split_is_a_partition_by_sample():
    d = train_test_designs(P, section(method="lhs", n_train=12, n_test=4, split="random"))
    idx = np.concatenate([d["train"]["source_index"].values, d["test"]["source_index"].values])
    assert sorted(idx) == list(range(16))


def test_lhs_stratification():
    u = unit_design("lhs", 10, 2, 0)
    for j in range(2):
        assert sorted(np.floor(u[:, j] * 10).astype(int)) == list(range(10))


def test_grid_needs_a_perfect_power():
    assert unit_design("grid", 9, 2, 0).shape == (9, 2)
    with pytest.raises(SurroflowError, match="perfect power"):
        unit_design("grid", 10, 2, 0)


def test_resolve_parameters_errors_name_the_key():
    with pytest.raises(SurroflowError, match="simulator.parameters.bogus"):
        resolve_parameters(P, {"bogus": [0, 1]})
    with pytest.raises(SurroflowError, match="simulator.parameters.a"):
        resolve_parameters(P, {"a": [2, 1]})
    assert [p.name for p in resolve_parameters(P, {"a": [0.6, 0.7]})] == ["a"]


def test_separate_designs_never_share_a_point_and_missing_keys_are_named():
    d = train_test_designs(P, section(n_train=16, n_test=8, seed=1))
    tr, te = d["train"]["design"].values, d["test"]["design"].values
    assert tr.shape == (16, 2) and te.shape == (8, 2)
    assert not any(np.allclose(t, u) for t in tr for u in te)
    assert d["train"].attrs["split"] == "train" and d["test"].attrs["split"] == "test"
    with pytest.raises(SurroflowError, match=r"design: keys \['method', 'test_method', 'seed', 'split'\] missing"):
        train_test_designs(P, {"n_train": 4, "n_test": 2})


def test_calibration_split_is_drawn_like_the_test_design_from_its_own_stream():
    plain = train_test_designs(P, section(n_train=16, n_test=8, seed=1))
    d = train_test_designs(P, section(n_train=16, n_test=8, n_calibration=32, seed=1, test_method="random"))
    cal = d["calibration"]
    assert cal.sizes["sample"] == 32 and cal.attrs["split"] == "calibration"
    assert cal.attrs["design_method"] == "random" and d["train"].attrs["design_method"] == "sobol"
    seeds = {d[s].attrs["design_seed"] for s in ("train", "test", "calibration")}
    assert len(seeds) == 3                                        # three seed streams
    # the training design is the one drawn without a calibration split: nothing else moves
    np.testing.assert_array_equal(d["train"]["design"].values, plain["train"]["design"].values)
    others = np.concatenate([d["train"]["design"].values, d["test"]["design"].values])
    assert not any(np.allclose(c, o) for c in cal["design"].values for o in others)
    v = cal["design"].values
    assert np.all((v[:, 0] >= 0.01) & (v[:, 0] <= 0.1)) and np.all((v[:, 1] >= 0.5) & (v[:, 1] <= 1.5))
    # without n_calibration the calibration design is empty and everything else is unchanged
    assert plain["calibration"].sizes["sample"] == 0
    np.testing.assert_array_equal(d["test"]["design"].values,
                                  train_test_designs(P, section(n_train=16, n_test=8, seed=1,
                                                                test_method="random"))["test"]["design"].values)


def test_random_split_with_calibration_is_a_three_way_partition():
    d = train_test_designs(P, section(method="lhs", n_train=12, n_test=4, n_calibration=5, split="random"))
    parts = [d[s]["source_index"].values for s in ("train", "test", "calibration")]
    assert [p.size for p in parts] == [12, 4, 5]
    assert sorted(np.concatenate(parts)) == list(range(21))
    # the first two parts are where they were without the calibration part (same permutation prefix)
    perm = np.random.default_rng(0).permutation(21)
    assert set(parts[0]) == set(perm[:12]) and set(parts[2]) == set(perm[16:])


def test_make_design_stage_writes_the_calibration_design_only_where_one_is_asked_for(tmp_path):
    from surroflow.config import validate_config
    from surroflow.io import open_dataset
    from surroflow.stages import StageContext, make_design

    def cfg(**design):
        return validate_config({"studies": {"s": {
            "simulator": {"name": "burgers", "settings": {"n_x": 32, "n_time": 5}},
            "design": {"n_train": 4, "n_test": 2, **design}, "surrogates": {"rbf": {"kind": "rbf"}}}}})
    two = {"train": str(tmp_path / "train.nc"), "test": str(tmp_path / "test.nc")}
    make_design.run({}, two, StageContext.for_study(cfg(), "s", "make_design"))    # none asked: 2 outputs do
    with pytest.raises(SurroflowError, match="design.n_calibration is 3, but the stage was given no 'calibration' output"):
        make_design.run({}, two, StageContext.for_study(cfg(n_calibration=3), "s", "make_design"))
    three = {**two, "calibration": str(tmp_path / "calibration.nc")}
    make_design.run({}, three, StageContext.for_study(cfg(n_calibration=3), "s", "make_design"))
    ds = open_dataset(tmp_path / "calibration.nc", stage="make_design")
    assert ds.sizes["sample"] == 3 and ds.attrs["split"] == "calibration"
    assert ds.attrs["design_sha256"] == open_dataset(tmp_path / "train.nc").attrs["design_sha256"]


@pytest.mark.parametrize("split", ["separate", "random"])
def test_members_repeat_each_point_with_distinct_reproducible_seeds(split):
    """design.members = 4: every split's points are run 4 times (point-major), each member with
    its own noise seed; no two samples of any split share a seed, and the designs are
    reproducible; design_records hands the seed to the simulator."""
    from surroflow.design import design_records, members_of
    from surroflow.simulators.base import NOISE_SEED
    cfg = {"method": "sobol", "test_method": None, "n_train": 8, "n_test": 4, "n_calibration": 2, "seed": 5,
           "split": split, "members": 4}
    d = train_test_designs(P, cfg)
    again = train_test_designs(P, cfg)
    seeds = []
    for name, ds in d.items():
        n = cfg[f"n_{name}"]
        assert ds.sizes["sample"] == 4 * n and members_of(ds) == 4
        np.testing.assert_array_equal(ds["point"].values, np.repeat(np.arange(n), 4))
        np.testing.assert_array_equal(ds["member"].values, np.tile(np.arange(4), n))
        values = ds["design"].values.reshape(n, 4, -1)
        assert np.all(values == values[:, :1])                         # members share their point
        np.testing.assert_array_equal(ds["noise_seed"].values, again[name]["noise_seed"].values)
        seeds += list(ds["noise_seed"].values)
        rec = design_records(ds)
        assert rec[1][NOISE_SEED] == int(ds["noise_seed"].values[1]) and set(rec[1]) == {"nu", "a", NOISE_SEED}
    assert len(set(seeds)) == len(seeds)
    one = train_test_designs(P, {**cfg, "members": 1})["train"]
    assert "point" not in one.coords and members_of(one) == 1
    with pytest.raises(SurroflowError, match="members must be >= 1"):
        train_test_designs(P, {**cfg, "members": 0})


def test_the_design_does_not_depend_on_the_order_of_the_parameter_mapping():
    """The config hash ignores key order, so the design must too: the columns follow the
    simulator's declaration, and the same Sobol points come out of either order."""
    from surroflow.design import make_design
    one = resolve_parameters(P, {"nu": [0.02, 0.1], "a": [0.6, 1.4]})
    other = resolve_parameters(P, {"a": [0.6, 1.4], "nu": [0.02, 0.1]})
    assert [p.name for p in one] == [p.name for p in other] == ["nu", "a"]
    assert one == other
    np.testing.assert_array_equal(make_design(one, "sobol", 16, 3)["design"].values,
                                  make_design(other, "sobol", 16, 3)["design"].values)
