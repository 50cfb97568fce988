"""Regression against the paper: method.md section 4, China, 2020, the published flows.

Every figure there is a test, to 0.01 percentage point.
"""

from __future__ import annotations

import numpy as np
import pytest

from chokepoint import load_networks, vulnerability
from chokepoint.index import AGGREGATE

from conftest import FLOWS

CASES = ["proportional", "optimistic", "pessimistic_a", "pessimistic_b"]
# method.md section 4 (percent): pair -> proportional, optimistic, pessimistic A, pessimistic B
TABLE_2 = {
    ("LFP", "lithium"): (91.60, 89.89, 93.19, 100.00),
    ("NCM", "lithium"): (78.36, 56.67, 100.00, 100.00),
    ("NCM", "cobalt"): (69.64, 56.67, 69.68, 100.00),
    ("NCM", "nickel"): (58.19, 56.67, 59.16, 100.00),
    ("NCM", "manganese"): (79.89, 70.68, 75.65, 94.50),
    ("NCM", AGGREGATE): (79.89, 70.68, 100.00, 100.00),
}
# Stage decomposition (proportional, optimistic, pessimistic A), cumulative from cathode.
STAGES = {
    ("LFP", "lithium", "cathode"): (89.89, 89.89, 89.89),
    ("LFP", "lithium", "refining"): (91.60, 89.89, 93.19),
    ("NCM", "lithium", "cathode"): (56.67, 56.67, 56.67),
    ("NCM", "lithium", "refining"): (78.36, 56.67, 100.00),
}
TOL_PP = 0.01


@pytest.fixture(scope="module")
def china():
    nets = load_networks(FLOWS, ["lithium", "cobalt", "nickel", "manganese"], 2020)
    return vulnerability(nets, {"China": ["China"]}, progress=False)


@pytest.mark.parametrize("pair", list(TABLE_2))
@pytest.mark.parametrize("case", CASES)
def test_table_2(china, pair, case):
    expected = TABLE_2[pair][CASES.index(case)]
    got = 100 * float(china.vi.sel(focal="China", chemistry=pair[0], material=pair[1],
                                   case=case))
    assert got == pytest.approx(expected, abs=TOL_PP)


@pytest.mark.parametrize("key", list(STAGES))
@pytest.mark.parametrize("case", CASES[:3])
def test_stage_decomposition(china, key, case):
    chem, mat, stage = key
    expected = STAGES[key][CASES.index(case)]
    got = 100 * float(china.vi_cumulative.sel(focal="China", chemistry=chem, material=mat,
                                              case=case, stage=stage))
    assert got == pytest.approx(expected, abs=TOL_PP)


def test_all_stages_equals_the_index(china):
    full = china.vi_cumulative.sel(stage="mining", focal="China").values
    index = china.vi.sel(focal="China").values
    assert np.isfinite(index).sum() == 4 * 6  # 5 pairs and the NCM aggregate, 4 cases
    np.testing.assert_allclose(full, index, rtol=0, atol=1e-12)


def test_cathode_making_moved_out_of_china():
    """The paper's 71.0%: LFP-Li, China counted at mining and refining only, proportional."""
    nets = load_networks(FLOWS, ["lithium"], 2020)
    ds = vulnerability(nets, {"China upstream": {"countries": ["China"],
                                                  "stages": ["mining", "refining"]}},
                       pairs=["LFP-lithium"], cases=["proportional"],
                       stage_contributions=False)
    assert 100 * float(ds.vi.item()) == pytest.approx(71.0, abs=0.05)
    assert 100 * float(ds.vi.item()) == pytest.approx(70.99, abs=TOL_PP)
