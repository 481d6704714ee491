"""Shared material of the importer and external-system tests (no tests here).

Evacuation sites (指定緊急避難場所一覧) of Kobe as a city publishes them: the columns of the
recommended dataset, Japanese text with characters only cp932 has (髙, ①), and real places with
their coordinates.  :func:`evacuation_csv` writes them with any header spelling and encoding.
"""

from __future__ import annotations

from tests.stub_server import serve as serve  # re-exported for the pull tests

HEADER = ["市区町村コード", "NO", "名称", "名称_カナ", "住所", "方書", "緯度", "経度", "標高",
          "電話番号", "内線番号", "都道府県名", "市区町村名", "災害種別_洪水",
          "災害種別_崖崩れ、土石流及び地滑り", "災害種別_高潮", "災害種別_地震", "災害種別_津波",
          "災害種別_大規模な火事", "災害種別_内水氾濫", "災害種別_火山現象", "指定避難所との重複",
          "想定収容人数", "対象となる町会・自治会", "URL", "備考"]
SITES = [
    ["281000", "1", "神戸市立御影中学校", "コウベシリツミカゲチュウガッコウ",
     "兵庫県神戸市東灘区御影町御影字平野1", "", "34.7244", "135.2543", "35.2", "078-851-0000", "",
     "兵庫県", "神戸市", "1", "", "",
     "1", "1", "1", "", "", "1", "1,200", "御影町①;御影町②", "https://www.city.kobe.lg.jp/", ""],
    ["281000", "2", "王子公園", "オウジコウエン", "兵庫県神戸市灘区王子町3丁目", "", "34.7103", "135.2133",
     "30", "078-861-0000", "", "兵庫県", "神戸市", "", "", "", "1", "", "1", "", "", "",
     "5000", "", "", "髙橋地区の一時避難場所"],
    ["281000", "3", "みなとのもり公園", "ミナトノモリコウエン", "兵庫県神戸市中央区小野浜町1", "", "34.6888",
     "135.1993", "3.1", "078-322-0000", "", "兵庫県", "神戸市", "", "", "", "1", "", "1", "",
     "", "", "3000", "", "", ""],
    ["281000", "4", "神戸市役所", "コウベシヤクショ", "兵庫県神戸市中央区加納町6-5-1", "1号館", "34.6901",
     "135.1955", "8", "078-331-8181", "2000", "兵庫県", "神戸市", "1", "", "1", "1", "1", "",
     "1", "", "1", "800", "", "https://www.city.kobe.lg.jp/", ""],
    ["281000", "5", "須磨海浜公園", "スマカイヒンコウエン", "兵庫県神戸市須磨区若宮町1", "", "34.6432",
     "135.1143", "2", "078-731-0000", "", "兵庫県", "神戸市", "", "", "", "1", "", "1", "", "",
     "", "4000", "", "", ""],
]
KOBE_CITY_HALL = (135.1955, 34.6901)


def evacuation_csv(*, encoding: str = "cp932", header: list[str] | None = None,
                   rows: list[list[str]] | None = None, delimiter: str = ",",
                   bom: bool = False) -> bytes:
    """The evacuation sites as CSV bytes (header variants and extra rows as the test asks)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows if rows is not None else SITES)
    data = out.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data
