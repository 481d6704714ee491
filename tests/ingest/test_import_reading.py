"""Reading real-world files: encodings, delimiters, header variants, typed values, rejected rows."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.ingest.importers import (
    MappingError,
    UnreadableFile,
    mapping_from_dict,
    prepare_csv,
    prepare_file,
    prepare_geojson,
)
from cityos.ingest.importers.values import Rejected, convert, municipality_code, parse_date
from tests.ingest.test_import_support import HEADER, SITES, evacuation_csv


@pytest.mark.parametrize(("encoding", "bom", "expected"), [
    ("cp932", False, "cp932"), ("utf-8", False, "utf-8"), ("utf-8", True, "utf-8-sig"),
    ("utf-16", False, "utf-16"), ("euc_jp", False, "euc_jp")])
def test_the_encoding_is_detected(encoding: str, bom: bool, expected: str) -> None:
    rows = [r for r in SITES if not {"①", "髙"} & set("".join(r))]   # cp932 extensions
    prepared = prepare_csv(evacuation_csv(encoding=encoding, bom=bom, rows=rows))
    assert prepared.report.encoding == expected
    names = [e["名称"]["value"] for _, e in prepared.entities]
    assert "神戸市役所" in names and not prepared.report.rejected


def test_an_explicit_encoding_wins_and_a_wrong_one_is_refused() -> None:
    data = evacuation_csv(encoding="cp932")
    assert prepare_csv(data, encoding="Shift_JIS").report.encoding == "cp932"
    with pytest.raises(UnreadableFile, match="not valid utf-8"):
        prepare_csv(data, encoding="utf-8")
    with pytest.raises(UnreadableFile, match="unknown encoding"):
        prepare_csv(data, encoding="klingon")


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
def test_the_delimiter_is_detected(delimiter: str) -> None:
    prepared = prepare_csv(evacuation_csv(delimiter=delimiter))
    assert prepared.report.delimiter == delimiter
    assert len(prepared.entities) == len(SITES)


def test_header_variants_and_column_order_map_to_the_model() -> None:
    variants = {"緯度": "緯度(度)", "経度": "longitude", "名称": "名　称", "NO": "ＮＯ",
                "標高": "標高（ｍ）"}
    header = [variants.get(h, h) for h in HEADER]
    order = list(reversed(range(len(header))))
    data = evacuation_csv(header=[header[i] for i in order],
                          rows=[[row[i] for i in order] for row in SITES])
    prepared = prepare_csv(data, filename="kobe.csv")
    assert prepared.report.dataset == "指定緊急避難場所一覧"
    _, hall = next(p for p in prepared.entities if p[1]["id"].endswith("-4"))
    assert hall["id"] == "urn:ngsi-ld:EvacuationSpace:281000-4"
    assert hall["type"] == "指定緊急避難場所一覧"
    assert hall["名称"]["value"] == "神戸市役所"
    assert hall["標高"]["value"] == 8 and hall["緯度"]["value"] == 34.6901
    assert hall["location"]["value"] == {"type": "Point", "coordinates": [135.1955, 34.6901]}
    assert hall["想定収容人数"]["value"] == "800"          # Text in the model: kept as text
    assert "方書" in hall and "災害種別_高潮" in hall


def test_unknown_columns_are_kept_and_empty_cells_left_out() -> None:
    header = [*HEADER, "独自項目(メモ)"]
    rows = [[*row, "メモ"] for row in SITES]
    prepared = prepare_csv(evacuation_csv(header=header, rows=rows))
    _, first = prepared.entities[0]
    assert first["独自項目（メモ）"]["value"] == "メモ"
    assert "方書" not in first                     # blank cells are not written as ""


def test_rejected_rows_carry_row_number_and_reason() -> None:
    bad = [list(SITES[0]) for _ in range(5)]
    bad[0][1], bad[0][6] = "10", "北緯34度"                     # bad coordinates
    bad[1][1] = ""                                              # missing id
    bad[2][1], bad[2][8] = "12", "高い"                         # unparseable number
    bad[3][1], bad[3][6], bad[3][7] = "13", "135.2", "34.7"     # swapped
    bad[4][1] = "14"                                            # fine
    prepared = prepare_csv(evacuation_csv(rows=[*bad, bad[4]]))
    reasons = {r.row: r.reason for r in prepared.report.rejected}
    assert reasons[2].startswith("bad coordinates") and "北緯34度" in reasons[2]
    assert reasons[3] == "missing id: column NO is empty"
    assert reasons[4] == "unparseable number in column 標高: '高い'"
    assert "swapped" in reasons[5]
    assert reasons[7] == "duplicate id (also in row 6)"
    assert [e["id"] for _, e in prepared.entities] == ["urn:ngsi-ld:EvacuationSpace:281000-14"]


def test_dates_times_codes_and_numbers_of_japanese_files() -> None:
    assert parse_date("令和8年4月1日") == "2026-04-01"
    assert parse_date("平成元年1月8日") == "1989-01-08"
    assert parse_date("2026/4/1") == "2026-04-01"
    assert parse_date("２０２６年４月１日") == "2026-04-01"
    assert convert("9時30分", "time", "開始時間") == {"@type": "Time", "@value": "09:30:00+09:00"}
    assert convert("2026/11/25 9:00", "datetime", "t") == \
        {"@type": "DateTime", "@value": "2026-11-25T09:00:00+09:00"}
    assert convert("毎月第2日曜日", "date", "開始日") == "毎月第2日曜日"
    assert convert("１，２３４", "number", "n") == 1234
    with pytest.raises(Rejected, match="unparseable number"):
        convert("約100", "number", "定員")
    assert municipality_code("92011") == "092011"      # Utsunomiya, leading zero restored
    assert municipality_code("281000") == "281000"


def test_event_dataset_types_dates_and_times() -> None:
    csv_text = ("都道府県コード又は市区町村コード,NO,イベント名,開始日,終了日,開始時間,終了時間,料金(基本),"
                "緯度,経度\n281000,7,みなと神戸花火大会,令和8年8月1日,2026/8/1,19:30,20:30,０,34.68,135.19\n")
    prepared = prepare_csv(csv_text.encode("cp932"), dataset="06")
    _, event = prepared.entities[0]
    assert event["type"] == "イベント一覧"
    assert event["id"] == "urn:ngsi-ld:Event:281000-7"
    assert event["開始日"]["value"] == {"@type": "Date", "@value": "2026-08-01"}
    assert event["開始時間"]["value"] == {"@type": "Time", "@value": "19:30:00+09:00"}
    assert event["料金（基本）"]["value"] == 0


def test_a_file_that_is_no_dataset_needs_a_mapping() -> None:
    data = "stop_id,stop_name,lat,lon,seats\nS1,三宮,34.69,135.19,12\nS2,元町,x,135.18,3\n".encode()
    with pytest.raises(MappingError, match="--mapping"):
        prepare_csv(data)
    mapping = mapping_from_dict({"type": "BusStop", "id": "urn:ngsi-ld:BusStop:{stop_id}",
                                 "latitude": "lat", "longitude": "lon",
                                 "attributes": {"stop_name": "name",
                                                "seats": {"name": "seats", "kind": "integer"}}})
    prepared = prepare_csv(data, mapping=mapping)
    (_, stop), = prepared.entities
    assert stop == {"id": "urn:ngsi-ld:BusStop:S1", "type": "BusStop",
                    "name": {"type": "Property", "value": "三宮"},
                    "seats": {"type": "Property", "value": 12},
                    "location": {"type": "GeoProperty",
                                 "value": {"type": "Point", "coordinates": [135.19, 34.69]}}}
    assert prepared.report.rejected[0].row == 3


def test_geojson_features_become_entities() -> None:
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "h1", "properties": {"name": "三宮センター街", "height": 12.5},
         "geometry": {"type": "Point", "coordinates": [135.1955, 34.6913]}},
        {"type": "Feature", "id": "h2", "properties": {"name": "bad"},
         "geometry": {"type": "Point", "coordinates": [500, 34]}},
        {"type": "Feature", "properties": {"name": "no id"}, "geometry": None},
        {"type": "Feature", "id": "h4", "properties": {"name": "area"},
         "geometry": {"type": "Polygon", "coordinates": [[[135.1, 34.6], [135.2, 34.6],
                                                          [135.2, 34.7], [135.1, 34.6]]]}},
        {"type": "Feature", "id": "h5", "properties": ["not", "an", "object"], "geometry": None},
        "not a feature"]}
    prepared = prepare_file(json.dumps(collection).encode(), filename="shops.geojson",
                            entity_type="Shop")
    assert [e["id"] for _, e in prepared.entities] == ["urn:ngsi-ld:Shop:h1", "urn:ngsi-ld:Shop:h4"]
    shop = prepared.entities[0][1]
    assert shop["height"]["value"] == 12.5 and shop["location"]["value"]["type"] == "Point"
    reasons = {r.row: r.reason for r in prepared.report.rejected}
    assert reasons[2].startswith("bad coordinates") and reasons[3].startswith("missing id")
    assert reasons[5] == "the feature's properties are not an object"
    assert reasons[6] == "not a GeoJSON Feature"
    with pytest.raises(MappingError, match="FeatureCollection"):
        prepare_geojson(b'{"type": "Feature"}', entity_type="Shop")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([None, "csv", "geojson"]))
def test_any_bytes_are_imported_or_refused_cleanly(data: bytes, fmt: str | None) -> None:
    """Whatever a file holds, preparing it never fails with anything but a clear refusal."""
    try:
        prepared = prepare_file(data, format=fmt, entity_type="Thing")
    except (UnreadableFile, MappingError) as refusal:
        assert str(refusal)
        return
    assert prepared.report.rows >= len(prepared.entities)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), min_size=26, max_size=28), max_size=5))
def test_any_cells_of_a_dataset_file_map_or_are_rejected(rows: list[list[str]]) -> None:
    prepared = prepare_csv(evacuation_csv(rows=rows, encoding="utf-8"), dataset="10")
    written = [r for r in rows if any(c.strip() for c in r)]   # blank lines are skipped
    assert len(prepared.entities) + len(prepared.report.rejected) == len(written)
