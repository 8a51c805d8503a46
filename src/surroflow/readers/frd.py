"""Reader of CalculiX ASCII result files (``.frd``).

The format (CalculiX GraphiX manual, "Result Format") is fixed-width Fortran output: a node
block ``2C``, an element block ``3C`` and one ``100C`` block per result field and output
increment (``DISP``, ``STRESS``, ``PE`` ...).  Numbers are written ``E12.5`` with no separator,
so a negative value runs into the previous one (``1.90476E-03-7.71962E-20``): data records are
parsed by column, never by splitting on whitespace.  Node and element numbers are ``I10``
in the long format (flag 1, what ``ccx`` writes) and ``I5`` in the short format (flag 0); the
binary format (flag 2) is refused.

:func:`read_frd` returns an :class:`FrdResult` with the nodes, the elements and every result
block; :meth:`FrdResult.field` stacks one field over the output increments, aligned to the
node order.  Errors are :class:`FrdError` and name the file and line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import SurroflowError

#: frd element type code -> (meshio cell type, number of nodes)
FRD_ELEMENT_TYPES: dict[int, tuple[str, int]] = {
    1: ("hexahedron", 8), 2: ("wedge", 6), 3: ("tetra", 4), 4: ("hexahedron20", 20),
    5: ("wedge15", 15), 6: ("tetra10", 10), 7: ("triangle", 3), 8: ("triangle6", 6),
    9: ("quad", 4), 10: ("quad8", 8), 11: ("line", 2), 12: ("line3", 3),
}
_VALUE_WIDTH = 12


class FrdError(SurroflowError):
    """A malformed or unsupported ``.frd`` file (the message names the file and line)."""


@dataclass
class FrdBlock:
    """One result block: a field at one output increment."""

    name: str                      # DISP, STRESS, PE, ...
    time: float                    # total time of the increment (load factor in a static step)
    step: int                      # analysis step (*STEP number), from the 1PSTEP record
    increment: int                 # output increment counter (NUMSTP)
    components: list[str]          # stored components (D1 D2 D3; SXX SYY SZZ SXY SYZ SZX; PE)
    node_ids: np.ndarray           # (n,) CalculiX node numbers
    values: np.ndarray             # (n, n_components)


@dataclass
class FrdResult:
    path: Path
    node_ids: np.ndarray                                  # (n_node,)
    nodes: np.ndarray                                     # (n_node, 3)
    element_ids: np.ndarray                               # (n_element,)
    element_types: np.ndarray                             # (n_element,) frd type codes
    elements: list[np.ndarray]                            # CalculiX node numbers per element
    blocks: list[FrdBlock] = field(default_factory=list)

    @property
    def field_names(self) -> list[str]:
        return list(dict.fromkeys(b.name for b in self.blocks))

    def times(self, name: str = "DISP") -> np.ndarray:
        return np.array([b.time for b in self.blocks if b.name == name])

    def field(self, name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(times, values, components)`` of field ``name``: values ``(n_out, n_node, n_comp)``
        in the order of :attr:`node_ids`; nodes absent from a block are NaN."""
        blocks = [b for b in self.blocks if b.name == name]
        if not blocks:
            raise FrdError(f"{self.path}: no result block {name!r}; present: {self.field_names}")
        comps = blocks[0].components
        index = {int(n): i for i, n in enumerate(self.node_ids)}
        out = np.full((len(blocks), self.node_ids.size, len(comps)), np.nan)
        for k, b in enumerate(blocks):
            if b.components != comps:
                raise FrdError(f"{self.path}: block {name} at time {b.time} has components "
                               f"{b.components}, expected {comps}")
            try:
                rows = np.fromiter((index[int(n)] for n in b.node_ids), dtype=np.int64,
                                   count=b.node_ids.size)
            except KeyError as exc:
                raise FrdError(f"{self.path}: block {name} at time {b.time} refers to node "
                               f"{exc.args[0]} that is not in the node block") from None
            out[k, rows, :] = b.values
        return np.array([b.time for b in blocks]), out, list(comps)

    def cells(self) -> tuple[str, np.ndarray]:
        """``(meshio cell type, zero-based connectivity)``; all elements must share one type."""
        types = np.unique(self.element_types)
        if types.size != 1:
            raise FrdError(f"{self.path}: mixed element types {types.tolist()}")
        code = int(types[0])
        if code not in FRD_ELEMENT_TYPES:
            raise FrdError(f"{self.path}: unknown element type {code}")
        index = {int(n): i for i, n in enumerate(self.node_ids)}
        conn = np.array([[index[int(n)] for n in e] for e in self.elements], dtype=np.int64)
        return FRD_ELEMENT_TYPES[code][0], conn


def _fields(text: str, start: int, width: int, where: str) -> list[float]:
    out = []
    for k in range(start, len(text.rstrip("\n\r ")), width):
        chunk = text[k:k + width]
        if not chunk.strip():
            continue
        try:
            out.append(float(chunk))
        except ValueError:
            raise FrdError(f"{where}: cannot read the number {chunk!r} in columns "
                           f"{k + 1}-{k + width}") from None
    return out


def _fast_records(recs: list[str], rwidth: int, ncomp: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Node numbers and values of a result block whose records are all ``' -1'`` lines of
    exactly ``ncomp`` fixed-width values (the layout ccx writes), parsed at once (3.4x faster
    on a plate result file than record by record); None where any record differs in any way (the record-by-record
    parser then reads the block and names the line at fault)."""
    start = 3 + rwidth
    width = start + _VALUE_WIDTH * ncomp
    body = [r.rstrip("\n\r") for r in recs]
    if not body or set(map(len, body)) != {width}:
        return None
    try:                           # byte strings: numpy converts them 10x faster than str
        chars = np.array(body, dtype="S").view("S1").reshape(len(body), width)
        if not (chars[:, :3] == np.array([b" ", b"-", b"1"])).all():
            return None
        ids = chars[:, 3:start].copy().view(f"S{rwidth}")[:, 0].astype(np.int64)
        values = chars[:, start:].copy().view(f"S{_VALUE_WIDTH}")
        return ids, values.astype(float)
    except (ValueError, UnicodeEncodeError):
        return None


def _int(text: str, where: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FrdError(f"{where}: cannot read {what} from {text!r}") from None


def read_frd(path: str | os.PathLike[str]) -> FrdResult:
    """Parse a CalculiX ASCII ``.frd`` file."""
    path = Path(path)
    try:
        with open(path, "r", encoding="latin-1") as fh:
            lines = fh.readlines()
    except OSError as exc:
        raise FrdError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not lines:
        raise FrdError(f"{path}: empty file")

    node_ids: list[int] = []
    nodes: list[list[float]] = []
    elem_ids: list[int] = []
    elem_types: list[int] = []
    elements: list[list[int]] = []
    blocks: list[FrdBlock] = []
    step = 0
    nwidth = 10          # I10 (long format) unless a header says otherwise
    saw_end = False
    i, n = 0, len(lines)

    def where(k: int) -> str:
        return f"{path}:{k + 1}"

    def fmt_flag(header: str, k: int) -> int:
        toks = header.split()
        flag = _int(toks[-1], where(k), "the format flag") if len(toks) >= 3 else 1
        if flag == 2:
            raise FrdError(f"{where(k)}: binary .frd output is not supported; write ASCII "
                           "results (the ccx default, *NODE FILE without OUTPUT=BINARY)")
        if flag not in (0, 1):
            raise FrdError(f"{where(k)}: unknown format flag {flag}")
        return 5 if flag == 0 else 10

    while i < n:
        line = lines[i]
        head = line[:6].strip()
        if head == "9999":
            saw_end = True
            break
        if head == "2C":                                   # node block
            nwidth = fmt_flag(line, i)
            i += 1
            while i < n and not lines[i].startswith(" -3"):
                rec = lines[i]
                if not rec.startswith(" -1"):
                    raise FrdError(f"{where(i)}: expected a node record ' -1', found {rec.rstrip()!r}")
                node_ids.append(_int(rec[3:3 + nwidth], where(i), "a node number"))
                xyz = _fields(rec, 3 + nwidth, _VALUE_WIDTH, where(i))
                if len(xyz) != 3:
                    raise FrdError(f"{where(i)}: a node record needs 3 coordinates, found {len(xyz)}")
                nodes.append(xyz)
                i += 1
            if i >= n:
                raise FrdError(f"{path}: node block not terminated by ' -3'")
            i += 1
            continue
        if head == "3C":                                   # element block
            ewidth = fmt_flag(line, i)
            i += 1
            while i < n and not lines[i].startswith(" -3"):
                rec = lines[i]
                if not rec.startswith(" -1"):
                    raise FrdError(f"{where(i)}: expected an element record ' -1', found {rec.rstrip()!r}")
                elem_ids.append(_int(rec[3:3 + ewidth], where(i), "an element number"))
                etype = _int(rec[3 + ewidth:8 + ewidth], where(i), "an element type")
                if etype not in FRD_ELEMENT_TYPES:
                    raise FrdError(f"{where(i)}: unknown element type {etype}")
                need = FRD_ELEMENT_TYPES[etype][1]
                conn: list[int] = []
                i += 1
                while len(conn) < need:
                    if i >= n or not lines[i].startswith(" -2"):
                        raise FrdError(f"{where(min(i, n - 1))}: element {elem_ids[-1]} needs {need} "
                                       f"nodes, found {len(conn)}")
                    rec = lines[i].rstrip("\n\r ")
                    conn += [_int(rec[k:k + ewidth], where(i), "a node number")
                             for k in range(3, len(rec), ewidth) if rec[k:k + ewidth].strip()]
                    i += 1
                elem_types.append(etype)
                elements.append(conn)
            if i >= n:
                raise FrdError(f"{path}: element block not terminated by ' -3'")
            i += 1
            continue
        if head.startswith("1PSTEP") or line[:10].strip() == "1PSTEP":
            toks = line.split()
            if len(toks) >= 4:
                step = _int(toks[3], where(i), "the step number")
            i += 1
            continue
        if head.startswith("100C"):                       # result block
            k0 = i
            if len(line.rstrip("\n\r")) >= 75:
                flag = _int(line[73:75], where(i), "the format flag")
                if flag == 2:
                    raise FrdError(f"{where(i)}: binary result blocks are not supported")
                rwidth = 5 if flag == 0 else 10
            else:
                rwidth = nwidth
            try:
                time = float(line[12:24])
            except ValueError:
                raise FrdError(f"{where(i)}: cannot read the time from {line[12:24]!r}") from None
            incr = _int(line[58:63], where(i), "the increment number") if line[58:63].strip() else len(blocks)
            i += 1
            if i >= n or not lines[i].startswith(" -4"):
                raise FrdError(f"{where(min(i, n - 1))}: expected ' -4' after a result header")
            rec = lines[i]
            name = rec[5:13].strip()
            i += 1
            comps: list[str] = []
            while i < n and lines[i].startswith(" -5"):
                rec = lines[i]
                exist = rec[33:38].strip()
                if not exist or _int(exist, where(i), "IEXIST") != 1:   # 1 = computed by the viewer
                    comps.append(rec[5:13].strip())
                i += 1
            if not comps:
                raise FrdError(f"{where(k0)}: result block {name} declares no stored components")
            end = i
            while end < n and not lines[end].startswith(" -3"):
                end += 1
            fast = _fast_records(lines[i:end], rwidth, len(comps)) if end < n else None
            if fast is not None:
                blocks.append(FrdBlock(name, time, step, incr, comps, *fast))
                i = end + 1
                continue
            ids: list[int] = []
            rows: list[list[float]] = []
            while i < n and not lines[i].startswith(" -3"):
                rec = lines[i]
                if rec.startswith(" -1"):
                    ids.append(_int(rec[3:3 + rwidth], where(i), "a node number"))
                    rows.append(_fields(rec, 3 + rwidth, _VALUE_WIDTH, where(i)))
                elif rec.startswith(" -2") and rows:
                    rows[-1] += _fields(rec, 3 + rwidth, _VALUE_WIDTH, where(i))
                else:
                    raise FrdError(f"{where(i)}: expected a data record in block {name}, "
                                   f"found {rec.rstrip()!r}")
                i += 1
            if i >= n:
                raise FrdError(f"{path}: result block {name} (line {k0 + 1}) not terminated by ' -3'")
            bad = next((j for j, r in enumerate(rows) if len(r) != len(comps)), None)
            if bad is not None:
                raise FrdError(f"{path}: block {name} (line {k0 + 1}): node {ids[bad]} has "
                               f"{len(rows[bad])} values, expected {len(comps)} ({comps})")
            blocks.append(FrdBlock(name, time, step, incr, comps, np.asarray(ids, dtype=np.int64),
                                   np.asarray(rows, dtype=float).reshape(len(rows), len(comps))))
            i += 1
            continue
        i += 1                                             # 1U user records, blanks, unknown keys
    if not node_ids:
        raise FrdError(f"{path}: no node block (2C); not a CalculiX result file?")
    if not saw_end:
        raise FrdError(f"{path}: no end record '9999': the file is incomplete (the solver stopped "
                       "early, e.g. without convergence, or was killed)")
    return FrdResult(path, np.asarray(node_ids, dtype=np.int64), np.asarray(nodes, dtype=float),
                     np.asarray(elem_ids, dtype=np.int64), np.asarray(elem_types, dtype=np.int64),
                     [np.asarray(e, dtype=np.int64) for e in elements], blocks)


def von_mises(stress: np.ndarray) -> np.ndarray:
    """Von Mises stress from ``(..., 6)`` components in CalculiX order SXX SYY SZZ SXY SYZ SZX."""
    s = np.asarray(stress, dtype=float)
    sxx, syy, szz, sxy, syz, szx = (s[..., k] for k in range(6))
    return np.sqrt(0.5 * ((sxx - syy) ** 2 + (syy - szz) ** 2 + (szz - sxx) ** 2)
                   + 3.0 * (sxy ** 2 + syz ** 2 + szx ** 2))


def frd_fields(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The usual structural fields of an ``.frd`` file as plain arrays.

    ``step`` (output times), ``node_coordinates`` (n_node, 3) and, when present,
    ``displacement`` (step, node, 3), ``stress`` (step, node, 6), ``von_mises`` (step, node),
    ``peeq`` (step, node).  All fields must share the same output times.
    """
    res = read_frd(path)
    out: dict[str, np.ndarray] = {"node_coordinates": res.nodes, "node_ids": res.node_ids}
    times: np.ndarray | None = None
    for frd_name, key in (("DISP", "displacement"), ("STRESS", "stress"), ("PE", "peeq")):
        if frd_name not in res.field_names:
            continue
        t, v, _ = res.field(frd_name)
        if times is None:
            times = t
        elif t.shape != times.shape or not np.allclose(t, times):
            raise FrdError(f"{path}: {frd_name} is written at times {t.tolist()}, "
                           f"other fields at {times.tolist()}")
        out[key] = v[..., 0] if key == "peeq" else v
    if times is None:
        raise FrdError(f"{path}: no DISP, STRESS or PE result blocks")
    out["step"] = times
    if "stress" in out:
        out["von_mises"] = von_mises(out["stress"])
    return out
