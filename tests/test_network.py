"""The network model: node names, the published flows format, validation on load."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from chokepoint.errors import NetworkError
from chokepoint.network import Network, Stage, node_name, parse_node

from conftest import FLOWS, TINY_ARCS


@pytest.mark.parametrize(
    "name, owner, stage",
    [
        ("China_mine", "China", Stage.MINE),
        ("China_ref_poss", "China", Stage.REFINING_POOL),
        ("China_ref", "China", Stage.REFINING),
        ("Korea, Republic of_cath_poss", "Korea, Republic of", Stage.CATHODE_POOL),
        ("NCM", "NCM", Stage.PRODUCT),
        ("Unknown Raw Material Source_mine", "URMS", Stage.UNCERTAIN_SOURCE),
        ("MRMT", "MRMT", Stage.UNCERTAIN_SOURCE),
        ("Non-Battery Cathode Products", "NBCP", Stage.OTHER_SINK),
    ],
)
def test_parse_node(name, owner, stage):
    assert parse_node(name) == (owner, stage)


def test_node_name_round_trips():
    for name in ["China_mine", "Chile_ref_poss", "LFP", "Missing Refined Material Trade"]:
        assert node_name(*parse_node(name)) == name


def test_unknown_suffix_names_node_and_suggests():
    with pytest.raises(ValueError, match=r"'China_refinery'.*unknown stage suffix"):
        parse_node("China_refinery")


def _write(tmp_path, text, bom=False):
    p = tmp_path / "lithium_2020.csv"
    p.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return p


def _csv(arcs):
    lines = ["Source,Target,Value"] + [f'"{s}","{t}",{v}' for s, t, v in arcs]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("bom", [False, True])
def test_reads_published_format_with_or_without_bom(tmp_path, bom):
    net = Network.read_csv(_write(tmp_path, _csv(TINY_ARCS), bom=bom))
    assert len(net.arcs) == len(TINY_ARCS)
    assert net.products == ["LFP"]
    assert net.product_supply("LFP") == pytest.approx(95.0)


def test_write_then_read_is_identical(tmp_path, tiny):
    tiny.to_csv(tmp_path / "x.csv")
    again = Network.read_csv(tmp_path / "x.csv")
    assert again.arcs.equals(tiny.arcs)


def _bad(tmp_path, arcs):
    return lambda: Network.read_csv(_write(tmp_path, _csv(arcs)))


def test_negative_tonnage_names_row(tmp_path):
    arcs = list(TINY_ARCS)
    arcs[2] = ("China_ref_poss", "China_ref", -100.0)
    with pytest.raises(NetworkError, match=r"row 4: negative tonnage -100"):
        _bad(tmp_path, arcs)()


def test_non_numeric_tonnage_names_row(tmp_path):
    arcs = list(TINY_ARCS)
    arcs[0] = ("Australia_mine", "China_ref_poss", "sixty")
    with pytest.raises(NetworkError, match=r"row 2: tonnage 'sixty' is not a number"):
        _bad(tmp_path, arcs)()


def test_duplicate_arc_names_row(tmp_path):
    with pytest.raises(NetworkError, match=r"row 11: duplicate arc 'Australia_mine'"):
        _bad(tmp_path, TINY_ARCS + [TINY_ARCS[0]])()


def test_unknown_stage_suffix_names_row(tmp_path):
    arcs = TINY_ARCS + [("China_refinery", "LFP", 1.0)]
    with pytest.raises(NetworkError, match=r"row 11: node 'China_refinery' has an unknown"):
        _bad(tmp_path, arcs)()


def test_unbalanced_node_is_named(tmp_path):
    arcs = list(TINY_ARCS)
    arcs[3] = ("China_ref", "Japan_cath_poss", 50.01)  # China_ref: in 100, out 100.01
    with pytest.raises(NetworkError, match=r"node 'China_ref' is unbalanced"):
        _bad(tmp_path, arcs)()


def test_tiny_imbalance_within_tolerance_is_accepted(tmp_path):
    arcs = list(TINY_ARCS)
    arcs[3] = ("China_ref", "Japan_cath_poss", 50.00001)  # 1e-7 relative
    arcs[6] = ("Japan_cath_poss", "LFP", 50.00001)
    assert Network.read_csv(_write(tmp_path, _csv(arcs))).product_supply("LFP") > 95


def test_missing_product_sink(tmp_path):
    arcs = [("Chile_mine", "Chile_ref_poss", 1.0), ("Chile_ref_poss", "Raw Materials not "
            "accounted for in refining production", 1.0)]
    with pytest.raises(NetworkError, match="no product sink"):
        _bad(tmp_path, arcs)()


def test_requested_product_missing(tiny):
    with pytest.raises(NetworkError, match=r"no product sink 'NCM'.*has LFP"):
        tiny.require_product("NCM")


def test_wrong_columns(tmp_path):
    with pytest.raises(NetworkError, match=r"columns are \['From', 'To', 'Tonnes'\]"):
        Network.read_csv(_write(tmp_path, "From,To,Tonnes\nA_mine,LFP,1\n"))


@pytest.mark.parametrize("text", ["Source,Target,Value\n", "\ufeffSource,Target,Value\r\n\r\n"])
def test_a_header_without_rows_is_a_clean_error(tmp_path, text):
    with pytest.raises(NetworkError, match=r"lithium_2020.csv: has a header and no rows"):
        Network.read_csv(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(NetworkError, match="no such flows file"):
        Network.read_csv(tmp_path / "nope.csv")


def test_sink_with_outflow_is_rejected():
    with pytest.raises(NetworkError, match="'LFP' is a product and cannot send flow"):
        Network.from_arcs(TINY_ARCS + [("LFP", "Japan_cath_poss", 1.0)])


@pytest.mark.parametrize("material", ["lithium", "cobalt", "nickel", "manganese"])
def test_published_networks_load_and_balance(material):
    net = Network.read_csv(FLOWS / f"{material}_2020.csv", material=material)
    flow = net.node_flow()
    interior = net.nodes["stage"].map(lambda s: s.is_interior)
    assert (flow[interior]["inflow"] - flow[interior]["outflow"]).abs().max() < 1e-3
    assert net.products


def test_published_phosphorus_network_is_unbalanced():
    # Its cathode pools send P to LFP but receive nothing: refined trade was never linked.
    with pytest.raises(NetworkError, match=r"'China_cath_poss' is unbalanced: inflow 0 t"):
        Network.read_csv(FLOWS / "phosphorus_2020.csv", material="phosphorus")


def test_uncertain_source_must_feed_a_pool():
    with pytest.raises(NetworkError, match="uncertain source 'Missing Refined Material Trade' "
                                           "feeds 'LFP'"):
        Network.from_arcs(TINY_ARCS + [("Missing Refined Material Trade", "LFP", 1.0)])


# -- the typed reader -------------------------------------------------------------------------


@pytest.mark.parametrize("material", ["lithium", "cobalt", "nickel", "manganese"])
def test_typed_read_equals_the_text_read(material):
    """One typed pass gives what reading every cell as text gives: the same nodes in the same
    order, the same arcs and bit-identical tonnages."""
    from chokepoint.network import _read_text, _read_typed, _Span

    path = FLOWS / f"{material}_2020.csv"
    with path.open("rb") as f:
        typed = _read_typed(_Span(f.fileno(), 0, path.stat().st_size))
    text = _read_text(path, path.read_bytes())
    assert typed is not None and isinstance(typed["source"].dtype, pd.CategoricalDtype)
    assert text["tonnes"].dtype != float  # the text path really is the other path
    a, b = (Network.from_arcs(t, material, 2020, str(path)) for t in (typed, text))
    assert list(a.nodes.index) == list(b.nodes.index)
    assert a.nodes["owner"].tolist() == b.nodes["owner"].tolist()
    assert a.arcs["source"].tolist() == b.arcs["source"].tolist()
    assert a.arcs["target"].tolist() == b.arcs["target"].tolist()
    assert np.array_equal(a.arcs["tonnes"].to_numpy(), b.arcs["tonnes"].to_numpy())


@pytest.mark.parametrize("material", ["lithium", "cobalt", "nickel", "manganese"])
def test_a_file_read_in_two_halves_side_by_side_equals_the_whole_read(material, monkeypatch):
    """A large flows file is parsed in two halves on two threads; made large enough here by
    lowering the bound: the same nodes in the same order, arcs and tonnages to the bit."""
    import chokepoint.network as network

    monkeypatch.setattr(network, "SPLIT_READ_BYTES", 0)
    path = FLOWS / f"{material}_2020.csv"
    with path.open("rb") as f:
        halves = network._read_typed_halves(f.fileno(), path.stat().st_size)
        whole = network._read_typed(network._Span(f.fileno(), 0, path.stat().st_size))
    assert halves is not None and len(halves) == len(whole)
    a, b = (Network.from_arcs(t, material, 2020, str(path)) for t in (halves, whole))
    assert list(a.nodes.index) == list(b.nodes.index)
    assert a.arcs["source"].tolist() == b.arcs["source"].tolist()
    assert a.arcs["target"].tolist() == b.arcs["target"].tolist()
    assert np.array_equal(a.arcs["tonnes"].to_numpy(), b.arcs["tonnes"].to_numpy())


@pytest.mark.parametrize("inside", ["\n", " "])
def test_a_line_break_inside_a_quoted_name_is_never_where_a_file_is_split(tmp_path, monkeypatch,
                                                                            inside):
    """The first line break after the file's middle is inside a quoted name: the halves are
    not used (the first holds an odd number of quotes), and the file is read whole."""
    import chokepoint.network as network

    monkeypatch.setattr(network, "SPLIT_READ_BYTES", 0)
    owner = "A" * 1000 + inside + "B"
    p = _write(tmp_path, _csv([(f"{owner}_mine", "China_rp", 1.0), *TINY_ARCS]))
    data = p.read_bytes()
    assert data.index(b"A" * 1000) < len(data) // 2 < data.index(b"A" * 1000) + 1000
    with p.open("rb") as f:
        halves = network._read_typed_halves(f.fileno(), len(data))
    assert (halves is None) == (inside == "\n")
    with p.open("rb") as f:
        whole = network._read_typed(network._Span(f.fileno(), 0, len(data)))
    for table in (halves, whole):
        assert table is None or table["source"].tolist()[0] == f"{owner}_mine"


def test_a_flows_file_past_the_bound_is_refused_by_size(tmp_path, monkeypatch):
    """The typed reader streams the file within the bound the whole-file reader keeps: past it,
    one line naming the file and the bound, whichever reader met it."""
    import chokepoint.network as network

    p = _write(tmp_path, _csv(TINY_ARCS))
    monkeypatch.setattr(network, "FLOWS_MAX_BYTES", p.stat().st_size - 1)
    with pytest.raises(NetworkError, match=rf"lithium_2020.csv: more than the "
                                           rf"{p.stat().st_size - 1:,} bytes a flows file"):
        Network.read_csv(p)
    monkeypatch.setattr(network, "FLOWS_MAX_BYTES", p.stat().st_size)
    assert len(Network.read_csv(p).arcs) == len(TINY_ARCS)


def test_names_are_stored_once_and_codes_are_positions(tiny):
    """Arc ends are categorical over the node index; their codes are the node positions."""
    for column, pos in zip(("source", "target"), tiny.positions()):
        col = tiny.arcs[column]
        assert list(col.cat.categories) == list(tiny.nodes.index)
        assert np.array_equal(pos, tiny.nodes.index.get_indexer(col.astype(str)))
        assert np.array_equal(tiny.nodes.index[pos], col.astype(str))


@pytest.mark.parametrize("value, message", [
    ("nan", "row 3: tonnage 'nan' is not a number"),
    ("inf", "row 3: tonnage 'inf' is not a number"),
    ("", "row 3: tonnage '' is not a number"),
    ("-0.5", "row 3: negative tonnage -0.5"),
])
def test_a_value_the_typed_read_refuses_is_named_by_row(tmp_path, value, message):
    arcs = list(TINY_ARCS)
    arcs[1] = (arcs[1][0], arcs[1][1], value)
    with pytest.raises(NetworkError, match=re.escape(message)):
        _bad(tmp_path, arcs)()


def test_a_file_with_an_undecodable_byte_is_named(tmp_path):
    p = _write(tmp_path, _csv(TINY_ARCS))
    data = p.read_bytes()
    assert b"China_ref\"" in data
    p.write_bytes(data.replace(b"China_ref\"", b"China_r\xffef\"", 1))
    with pytest.raises(NetworkError, match=r"lithium_2020.csv: cannot read: not UTF-8 text"):
        Network.read_csv(p)


def test_arcs_given_with_a_missing_name_are_refused():
    arcs = pd.DataFrame(TINY_ARCS, columns=["source", "target", "tonnes"])
    arcs.loc[3, "target"] = None
    with pytest.raises(NetworkError, match=r"row 5: a node name is missing"):
        Network.from_arcs(arcs)
