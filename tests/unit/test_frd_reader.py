"""The CalculiX .frd reader: a hand-written fixture, malformed files, and ccx runs with known answers."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from surroflow.mesh import rectangle
from surroflow.readers import FrdError, frd_fields, read_frd, von_mises

DATA = Path(__file__).resolve().parents[1] / "data" / "calculix"
needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None,
                               reason="ccx not installed (apt-get install calculix-ccx)")


# --------------------------------------------------------------------------- fixture, no ccx
def test_snippet_nodes_elements_and_times():
    res = read_frd(DATA / "plate_snippet.frd")
    np.testing.assert_array_equal(res.node_ids, [1, 2, 3, 4])
    np.testing.assert_allclose(res.nodes[:, :2], [[0, 0], [10, 0], [10, 5], [0, 5]])
    cell_type, conn = res.cells()
    assert cell_type == "quad"
    np.testing.assert_array_equal(conn, [[0, 1, 2, 3]])
    assert res.field_names == ["DISP", "STRESS", "PE"]
    np.testing.assert_allclose(res.times("DISP"), [0.5, 1.0])
    assert [b.step for b in res.blocks] == [1] * 6


def test_snippet_values_parsed_by_column():
    f = frd_fields(DATA / "plate_snippet.frd")
    E, nu = 200000.0, 0.3
    x, y = f["node_coordinates"][:, 0], f["node_coordinates"][:, 1]
    for k, t in enumerate(f["step"]):
        s = 100.0 * t
        np.testing.assert_allclose(f["displacement"][k, :, 0], s * x / E, rtol=1e-5, atol=1e-12)
        # "...E-03-3.75000E-04": negative numbers that run into their neighbours
        np.testing.assert_allclose(f["displacement"][k, :, 1], -nu * s * y / E, rtol=1e-5, atol=1e-12)
    assert f["stress"].shape == (2, 4, 6)
    np.testing.assert_allclose(f["stress"][1, :, 3], [-1e-3, -2e-3, -3e-3, -4e-3])
    np.testing.assert_allclose(f["peeq"], [[0, 0, 0, 0], [2.5e-3, 5e-3, 7.5e-3, 1e-2]])
    np.testing.assert_allclose(f["von_mises"][1], np.sqrt(100.0 ** 2 + 3 * (1e-3 * np.arange(1, 5)) ** 2))


def test_von_mises_of_pure_shear():
    s = np.zeros((1, 6))
    s[0, 3] = 10.0
    np.testing.assert_allclose(von_mises(s), [10.0 * np.sqrt(3.0)])


def test_short_format(tmp_path):
    text = "\n".join([
        "    2C                             2                                     0",
        " -1    1 1.00000E+00 2.00000E+00 0.00000E+00",
        " -1    2-1.00000E+00-2.00000E+00 0.00000E+00",
        " -3",
        "  100CL  101 1.00000E+00           2                     0    1           0",
        " -4  PE          1    1",
        " -5  PE          1    1    0    0",
        " -1    1 1.00000E-03",
        " -1    2 2.00000E-03",
        " -3",
        " 9999", ""])
    p = tmp_path / "short.frd"
    p.write_text(text)
    res = read_frd(p)
    np.testing.assert_allclose(res.nodes[1], [-1.0, -2.0, 0.0])
    t, v, comps = res.field("PE")
    assert comps == ["PE"] and t.tolist() == [1.0]
    np.testing.assert_allclose(v[0, :, 0], [1e-3, 2e-3])


def test_truncated_file_is_an_error_naming_it(tmp_path):
    lines = (DATA / "plate_snippet.frd").read_text().splitlines()
    p = tmp_path / "cut.frd"
    p.write_text("\n".join(lines[:40]) + "\n")
    with pytest.raises(FrdError, match="cut.frd"):
        read_frd(p)


def test_bad_number_names_file_and_line(tmp_path):
    lines = (DATA / "plate_snippet.frd").read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith(" -1         2 2.50000E-03"))
    lines[k] = lines[k].replace("2.50000E-03", "2.5000XE-03")
    p = tmp_path / "bad.frd"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(FrdError, match=rf"bad\.frd:{k + 1}: cannot read the number"):
        read_frd(p)


def test_whole_block_parse_equals_record_by_record(monkeypatch):
    """Result blocks in ccx's layout are parsed at once; the record-by-record parser (forced
    here) reads the same numbers, and a block the fast path declines (a short value) still gets
    the careful parser's sentence."""
    from surroflow.readers import frd
    fast = read_frd(DATA / "plate_snippet.frd")
    calls = []
    real = frd._fast_records
    monkeypatch.setattr(frd, "_fast_records", lambda *a: calls.append(real(*a)) or None)
    slow = read_frd(DATA / "plate_snippet.frd")
    assert any(c is not None for c in calls)               # the fixture's blocks take the fast path
    assert [b.name for b in fast.blocks] == [b.name for b in slow.blocks]
    for a, b in zip(fast.blocks, slow.blocks):
        np.testing.assert_array_equal(a.node_ids, b.node_ids)
        np.testing.assert_array_equal(a.values, b.values)
    recs = [" -1         1 1.00000E+00-2.50000E-01", " -1         2 3.00000E+00 4.0000E+00"]
    assert real(recs, 10, 2) is None                       # a value one column short
    assert real(recs[:1], 10, 2)[1].tolist() == [[1.0, -0.25]]


def test_missing_file_and_binary_format(tmp_path):
    with pytest.raises(FrdError, match="nope.frd"):
        read_frd(tmp_path / "nope.frd")
    p = tmp_path / "bin.frd"
    p.write_text("    2C                             2                                     2\n")
    with pytest.raises(FrdError, match="binary"):
        read_frd(p)


# --------------------------------------------------------------------------- ccx: known answers
E, NU = 200000.0, 0.3
LENGTH, HEIGHT, THICK = 100.0, 10.0, 1.0          # A = 10 mm^2


def _bar_input(force: float, plastic: tuple[float, float] | None, nx: int = 10, ny: int = 2) -> str:
    """A CPS4 bar fixed axially at x = 0, pulled by ``force`` (consistent nodal loads) at x = L."""
    mesh = rectangle(LENGTH, HEIGHT, nx, ny)
    right = mesh.node_sets["right"]
    share = np.full(right.size, 1.0 / ny)
    share[[0, -1]] = 0.5 / ny                          # end nodes of the edge carry half
    lines = ["*NODE"] + [f"{i + 1}, {float(x)!r}, {float(y)!r}" for i, (x, y) in enumerate(mesh.points)]
    lines += ["*ELEMENT, TYPE=CPS4, ELSET=EALL"]
    lines += [f"{e + 1}, " + ", ".join(str(n + 1) for n in c) for e, c in enumerate(mesh.cells)]
    lines += ["*NSET, NSET=LEFT", ", ".join(str(n + 1) for n in mesh.node_sets["left"])]
    lines += ["*BOUNDARY", "LEFT, 1, 1", "1, 2, 2", "*MATERIAL, NAME=STEEL", "*ELASTIC", f"{E}, {NU}"]
    if plastic is not None:
        sy, h = plastic
        lines += ["*PLASTIC", f"{sy}, 0.0", f"{sy + h}, 1.0"]
    lines += ["*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL", f"{THICK}",
              "*TIME POINTS, NAME=OUT, GENERATE", "0.1, 1.0, 0.1",
              "*STEP, INC=1000", "*STATIC", "0.1, 1.0, 1e-6, 0.1", "*CLOAD"]
    lines += [f"{n + 1}, 1, {float(force * s)!r}" for n, s in zip(right, share)]
    lines += ["*NODE FILE, TIME POINTS=OUT", "U", "*EL FILE, TIME POINTS=OUT",
              "S, PEEQ" if plastic else "S", "*END STEP"]
    return "\n".join(lines) + "\n"


def _run_ccx(tmp_path: Path, text: str) -> dict[str, np.ndarray]:
    (tmp_path / "bar.inp").write_text(text)
    proc = subprocess.run([shutil.which("ccx") or "ccx", "-i", "bar"], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:]
    return frd_fields(tmp_path / "bar.frd")


@pytest.mark.calculix
@needs_ccx
def test_elastic_bar_against_analytical_displacement(tmp_path):
    force = 250.0                                     # N  -> sigma = 25 MPa
    f = _run_ccx(tmp_path, _bar_input(force, plastic=None))
    area = HEIGHT * THICK
    u_end = force * LENGTH / (E * area)               # F L / (E A) = 0.0125 mm
    assert f["step"][-1] == 1.0                       # a linear step is solved in one increment
    x, y = f["node_coordinates"][:, 0], f["node_coordinates"][:, 1]
    end = np.isclose(x, LENGTH)
    u = f["displacement"]
    np.testing.assert_allclose(u[-1, end, 0], u_end, rtol=1e-6)
    # linear along the bar, lateral contraction -nu sigma y / E
    sigma = force / area
    np.testing.assert_allclose(u[-1, :, 0], sigma * x / E, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(u[-1, :, 1], -NU * sigma * y / E, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(f["stress"][-1, :, 0], sigma, rtol=1e-4)


@pytest.mark.calculix
@needs_ccx
def test_plastic_onset_at_the_yield_load(tmp_path):
    sy, h = 250.0, 1000.0                             # MPa; yield load F_y = sy A = 2500 N
    area = HEIGHT * THICK
    f_max = 1.5 * sy * area                           # ramp to 1.5 F_y; yield at t = 2/3
    f = _run_ccx(tmp_path, _bar_input(f_max, plastic=(sy, h)))
    t = f["step"]
    sigma = f_max / area * t
    below, above = sigma < sy, sigma > sy
    assert below.sum() == 6 and above.sum() == 4
    np.testing.assert_array_equal(f["peeq"][below], 0.0)
    assert np.all(f["peeq"][above] > 0)
    # linear hardening: eps_p = (sigma - sy) / h, uniform along the bar
    expected = np.maximum(sigma - sy, 0.0) / h
    np.testing.assert_allclose(f["peeq"].mean(axis=1), expected, rtol=2e-3, atol=1e-9)
    u_end = (sigma[-1] / E + expected[-1]) * LENGTH
    end = np.isclose(f["node_coordinates"][:, 0], LENGTH)
    np.testing.assert_allclose(f["displacement"][-1, end, 0], u_end, rtol=2e-3)
