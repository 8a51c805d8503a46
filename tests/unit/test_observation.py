"""Noisy and partial observation of the chaotic systems (simulator settings of forecast studies):
the data every forecaster of a study is trained and judged on."""
from __future__ import annotations

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.simulators.chaos import KuramotoSivashinsky, Lorenz63

PARAMS = [{"ic": x} for x in (0.1, 0.4, 0.7)]


def test_noise_is_relative_to_each_component_std_and_per_sample():
    kw = dict(dt=0.01, dt_sample=0.01, n_steps=2000, transient=10.0)
    clean = np.stack([r["state"] for r in Lorenz63(**kw).run_batch(PARAMS)])
    noisy_sim = Lorenz63(**kw, observation_noise=0.05)
    noisy = np.stack([r["state"] for r in noisy_sim.run_batch(PARAMS)])
    ratio = (noisy - clean).std(axis=1) / clean.std(axis=1)           # (sample, component)
    np.testing.assert_allclose(ratio, 0.05, rtol=0.06)
    assert abs(np.corrcoef((noisy - clean)[0, :, 0], (noisy - clean)[1, :, 0])[0, 1]) < 0.1
    # a sample's noise does not depend on the batch it was run in
    alone = noisy_sim.run_batch(PARAMS[1:2])[0]["state"]
    np.testing.assert_array_equal(alone, noisy[1])
    assert noisy_sim.attrs()["observation_noise"] == 0.05
    assert "observation_noise" not in Lorenz63(**kw).attrs()


def test_partial_observation_keeps_the_observed_grid_points():
    full = KuramotoSivashinsky(n_steps=20)
    every = KuramotoSivashinsky(n_steps=20, observe_every=4)
    u_full = full.run_batch(PARAMS[:1])[0]["u"]
    u_every = every.run_batch(PARAMS[:1])[0]["u"]
    assert u_every.shape == (20, 16)
    np.testing.assert_array_equal(u_every, u_full[:, ::4])
    x = every.coordinates()["x"]
    np.testing.assert_allclose(x.values, full.coordinates()["x"].values[::4])
    assert x.extra_attrs["observed_of"] == 64 and every.attrs()["observed_components"] == "16 of 64"
    subset = KuramotoSivashinsky(n_steps=5, observe_random=10, observation_seed=3)
    idx = subset.observed_index
    assert len(idx) == 10 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, KuramotoSivashinsky(observe_random=10, observation_seed=3).observed_index)


@pytest.mark.parametrize("settings, match", [
    ({"observe_every": 2, "observe_random": 4}, "exclusive"),
    ({"observe_random": 65}, r"observe_random: expected 1\.\.64"),
    ({"observe_every": 100}, r"observe_every: expected 1\.\.64"),
    ({"observation_noise": -0.1}, "observation_noise"),
])
def test_bad_observation_settings_are_one_sentence(settings, match):
    with pytest.raises(SurroflowError, match=match):
        KuramotoSivashinsky(**settings)
