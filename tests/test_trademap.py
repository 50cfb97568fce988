"""The Trade Map importer: the quirks of real downloads, and damaged input."""

from __future__ import annotations

import gzip

import pytest

from chokepoint.statistics.trademap import (COLUMNS, TradeMapError, check_coverage, import_trademap,
                                 read_table, reporter_from_filename, write_table)

from conftest import TRADEMAP, needs_release

IMP = "Trade_Map_-_List_of_supplying_markets_for_a_product_imported_by_"
EXP = "Trade_Map_-_List_of_importing_markets_for_a_product_exported_by_"
HEAD = "Exporters\t" + "\t".join(f"{y}-Imported quantity, Tons" for y in range(2017, 2022)) + "\t"


def write(folder, code, name, lines, bom=True, head=HEAD):
    sub = folder / code
    sub.mkdir(parents=True, exist_ok=True)
    text = "\n".join([head, *lines]) + "\n"
    (sub / f"{name}.txt").write_bytes(("\ufeff" if bom else "").encode() + text.encode())


@pytest.fixture
def download(tmp_path):
    root = tmp_path / "tm"
    write(root, "282520 Li O-OH", IMP + "China", [
        '"World"\t10\t10\t10\t310\t10\t',
        '"Chile"\t1\t2\t3\t300\t5\t',
        '"Türkiye"\t\t\tNo Quantity\t4\t\t',
        '"Cote d\'Ivoire"\t\t\t\t6\t\t',
        '"Atlantis"\t\t\t\t1\t\t',
    ])
    write(root, "282520 Li O-OH", IMP + "Korea__Republic_of_(Mirror)", [
        '"Total"\t5\t5\t5\t5\t5\t', '"Chile"\t5\t5\t5\t5\t5\t'], bom=False)
    write(root, "282520 Li O-OH", EXP + "Chile", [
        '"World"\t9\t9\t9\t9\t9\t', '"Japan"\t9\t9\t9\t9\t9\t'],
        head="Importers\t" + "\t".join(f"{y}-Exported quantity, Tons" for y in range(2017, 2022)))
    return root


def test_reporter_from_filename():
    assert reporter_from_filename(IMP + "Korea__Republic_of_(Mirror)") == (
        "Korea, Republic of", "import", True)
    assert reporter_from_filename(EXP + "Hong_Kong__China") == ("Hong Kong, China", "export", False)
    assert reporter_from_filename("notes") is None


def test_tidy_table(download):
    res = import_trademap(download, preferred_names=["Turkey", "Côte d'Ivoire", "China"])
    t = res.table
    assert list(t.columns) == COLUMNS
    row = t[(t.year == 2020) & (t.exporter == "Chile") & (t.importer == "China")]
    assert row.tonnes.tolist() == [300] and row.side.tolist() == ["import"]
    assert not (t.exporter == "World").any() and not (t.exporter == "Total").any()
    assert set(t[t.importer == "China"].exporter) == {"Chile", "Turkey", "Côte d'Ivoire",
                                                       "Atlantis"}
    mirror = t[t.importer == "Korea, Republic of"]
    assert mirror.mirror.all() and len(mirror) == 5
    exp = t[t.side == "export"]
    assert set(zip(exp.exporter, exp.importer)) == {("Chile", "Japan")}
    # "No Quantity" and blanks are no data, not zeros
    assert len(t[(t.exporter == "Turkey")]) == 1
    joined = "\n".join(res.warnings)
    assert "'Türkiye' read as 'Turkey'" in joined and "Cote d'Ivoire\" read as" in joined
    assert "'Atlantis' is no known country" in joined


def test_truncated_file_is_listed(download):
    write(download, "282520 Li O-OH", IMP + "Japan", ['"Chile"\t1\t2', '"Peru"\t1\t1\t1\t7\t1\t'])
    res = import_trademap(download)
    assert any("Japan.txt: 1 row(s) shorter than the header" in w for w in res.warnings)
    japan = res.table[res.table.importer == "Japan"]
    assert set(zip(japan.exporter, japan.year)) >= {("Chile", 2017), ("Peru", 2020)}


def test_wrong_columns_are_listed_not_read(download):
    write(download, "282520 Li O-OH", IMP + "Japan", ['"Chile"\t1\t2\t'],
          head="Exporters\tImported value in 2017\tImported value in 2018\t")
    res = import_trademap(download)
    assert any("Japan.txt: no year columns" in w for w in res.warnings)
    assert "Japan" not in set(res.table[res.table.side == "import"].importer)


def test_empty_folder_is_listed(download):
    (download / "283691 Li Carbonates").mkdir()
    res = import_trademap(download)
    assert any("283691 Li Carbonates: empty folder" in w for w in res.warnings)


def test_stray_file_is_listed(download):
    (download / "282520 Li O-OH" / "readme.md").write_text("hello")
    assert any("readme.md: not a Trade Map download" in w
               for w in import_trademap(download).warnings)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(TradeMapError, match="no such folder"):
        import_trademap(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TradeMapError, match="no HS-code sub-folders"):
        import_trademap(tmp_path / "empty")


def test_listed_code_or_importer_absent_is_an_error_unless_optional(download):
    t = import_trademap(download)
    with pytest.raises(TradeMapError, match="HS code 283691 is named in the inputs"):
        check_coverage(t, {"282520": False, "283691": False}, {})
    check_coverage(t, {"282520": False, "283691": True}, {})
    with pytest.raises(TradeMapError, match="importer 'Chle'.*did you mean 'Chile'"):
        check_coverage(t, {}, {"Chle": False})
    check_coverage(t, {}, {"Chle": True, "China": False})


def test_table_round_trips_compressed(download, tmp_path):
    t = import_trademap(download).table
    write_table(t, tmp_path / "t.csv.gz")
    with gzip.open(tmp_path / "t.csv.gz", "rt") as f:
        assert f.readline().strip() == ",".join(COLUMNS)
    back = read_table(tmp_path / "t.csv.gz")
    assert back.equals(t.reset_index(drop=True).astype(back.dtypes.to_dict()))


def test_cli_import_on_damaged_folder_gives_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "data", "import-trademap",
                        str(tmp_path / "missing"), "--out", str(tmp_path / "t.csv.gz")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "no such folder" in r.stderr
    assert not (tmp_path / "t.csv.gz").exists()


@needs_release
def test_real_download_imports_with_its_quirks_listed(tmp_path):
    from chokepoint.statistics.inputs import Inputs

    inputs = Inputs.load(2020)
    res = import_trademap(TRADEMAP, inputs.preferred_names)
    check_coverage(res, inputs.all_codes(), inputs.importers())
    joined = "\n".join(res.warnings)
    assert "'Belgiuml' is no known country (did you mean 'Belgium'?)" in joined
    assert "(1).txt: re-download" in joined
    assert "no year columns" in joined  # value-only downloads are named, not skipped silently
    assert res.files_read > 1600
    shipped = read_table(inputs.folder / "trade_2017_2021.csv.gz")
    assert len(shipped) == len(res.table)
    assert shipped["tonnes"].sum() == pytest.approx(res.table["tonnes"].sum())


def test_file_cut_at_a_line_boundary_is_caught_against_its_world_row(tmp_path):
    root = tmp_path / "tm"
    write(root, "282520 Li O-OH", IMP + "China", [
        '"World"\t100\t100\t100\t400\t100\t',
        '"Chile"\t100\t100\t100\t300\t100\t',  # the rows below were cut off with the file
    ])
    res = import_trademap(root)
    assert any(f"{IMP}China.txt: its partners sum to 300 t in 2020, its World row says 400 t: "
               "rows are missing (cut short? download it again)" in w for w in res.warnings)


def test_folder_or_unreadable_entry_where_a_file_belongs_is_listed(download):
    sub = next(download.iterdir())
    (sub / (IMP + "Japan.txt")).mkdir()
    res = import_trademap(download)
    assert any(w.endswith(f"{IMP}Japan.txt: a folder where a download file belongs, not read")
               for w in res.warnings)


def test_importer_with_only_export_side_rows_is_a_warning_naming_them(download):
    res = import_trademap(download, preferred_names=["China"])
    check_coverage(res, {"282520": False}, {"China": False, "Japan": True})
    assert any(w.startswith("HS 282520: no import-side file of Japan, but 5 export-side row(s)"
                            " (45 t, 2017-2021, from Chile) report shipments to it")
               for w in res.warnings), res.warnings


def test_importer_never_overwrites_the_shipped_table_unless_forced(tmp_path, download):
    import subprocess
    import sys

    from chokepoint.statistics.inputs import TRADE_TABLE, data_dir

    before = (data_dir() / TRADE_TABLE).read_bytes()
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "data", "import-trademap",
                        str(download)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "is the shipped trade table: give --out FILE for a new one, or --force" in r.stderr
    assert (data_dir() / TRADE_TABLE).read_bytes() == before
