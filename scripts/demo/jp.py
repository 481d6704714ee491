"""Builders for the entities shaped on Japan's recommended datasets (推奨データセット): evacuation
sites, public facilities, AEDs, public toilets and tourist facilities.  Attribute names are the
Japanese column names of the models; the CSV tables next to this module hold the per-place data."""

from __future__ import annotations

from typing import Any

from demo.common import (
    CITY,
    CITY_CODE,
    CORE_CONTEXT,
    PREFECTURE,
    Place,
    geo,
    prop,
    read_table,
    urn,
)
from demo.sources import JP_CONTEXT_URL

Entity = dict[str, Any]

NOTE = "CityOS デモ用データ。名称・所在地は実在の施設ですが、位置は概略、その他の値は例示です。"
CITY_PHONE = "078-331-8181"  # 神戸市役所 (代表)
HAZARDS = ["災害種別_洪水", "災害種別_崖崩れ、土石流及び地滑り", "災害種別_高潮", "災害種別_地震",
           "災害種別_津波", "災害種別_大規模な火事", "災害種別_内水氾濫", "災害種別_火山現象"]
CLOSED_NEW_YEAR = "年末年始（12月29日〜1月3日）は休み"

# facility kind -> (利用可能曜日, 開始時間, 終了時間, 利用可能日時特記事項, AEDの設置位置)
KIND_HOURS: dict[str, tuple[str, str, str, str, str]] = {
    "office": ("月火水木金", "08:45:00", "17:30:00", "土日祝日・" + CLOSED_NEW_YEAR, "1号館1階 総合案内横"),
    "ward": ("月火水木金", "08:45:00", "17:30:00", "土日祝日・" + CLOSED_NEW_YEAR, "1階 総合案内横"),
    "library": ("火水木金土日", "09:30:00", "19:00:00", "月曜日（祝日の場合は翌平日）・" + CLOSED_NEW_YEAR,
                "1階 カウンター横"),
    "museum": ("火水木金土日", "09:30:00", "17:30:00", "月曜日（祝日の場合は翌平日）・" + CLOSED_NEW_YEAR,
               "1階 受付横"),
    "sports": ("毎日", "09:00:00", "21:00:00", CLOSED_NEW_YEAR, "1階 事務室前"),
    "hall": ("毎日", "09:00:00", "21:00:00", "催しにより異なる。" + CLOSED_NEW_YEAR, "1階 ホワイエ"),
    "park": ("毎日", "09:00:00", "17:00:00", "施設により異なる", "管理事務所"),
}
BARRIER_FREE = {
    "office": "車いす対応トイレ;エレベーター;オストメイト対応トイレ;授乳室;点字案内",
    "ward": "車いす対応トイレ;エレベーター;オストメイト対応トイレ;授乳室",
}

STATION_OPERATORS = {
    "myodani-station": "神戸市交通局",
    "seishin-chuo-station": "神戸市交通局",
    "suzurandai-station": "神戸電鉄株式会社",
    "tanigami-station": "神戸電鉄株式会社",
    "arima-onsen-station": "神戸電鉄株式会社",
    "okaba-station": "神戸電鉄株式会社",
    "kobe-airport": "関西エアポート神戸株式会社",
}
JR_WEST = "西日本旅客鉄道株式会社"
# tourist facilities that also have an AED in the demo: slug -> 設置位置
TOURIST_AEDS = {"oji-zoo": "正門 管理事務所", "kin-no-yu": "1階 受付", "port-tower": "1階 受付"}


def _ctx() -> list[str]:
    return [JP_CONTEXT_URL, CORE_CONTEXT]


def _head(entity_type: str, place: Place, no: int, *, code_key: str) -> Entity:
    """The attributes every jp dataset shares, in the models' column order."""
    return {
        "id": urn(entity_type, place.slug),
        "type": entity_type,
        code_key: prop(CITY_CODE),
        "NO": prop(str(no)),
        "都道府県名": prop(PREFECTURE),
        "市区町村名": prop(CITY),
        "名称": prop(place.name_ja),
        "名称_カナ": prop(place.kana),
    }


def _where(place: Place) -> Entity:
    return {
        "住所": prop(place.address),
        "緯度": prop(place.lat),
        "経度": prop(place.lon),
    }


def _tail(entity: Entity, place: Place) -> Entity:
    entity["備考"] = prop(NOTE)
    entity["location"] = geo(place.lat, place.lon)
    entity["@context"] = _ctx()
    return entity


def evacuation_sites(places: dict[str, Place]) -> list[Entity]:
    """指定緊急避難場所一覧 (model 10)."""
    out: list[Entity] = []
    for no, row in enumerate(read_table("evacuation.csv"), start=1):
        place = places[row["slug"]]
        flags = row["hazards"]
        if len(flags) != len(HAZARDS) or flags[-1] != "0":  # Kobe has no volcano
            raise ValueError(f"bad hazard flags for {place.slug}: {flags}")
        entity = _head("指定緊急避難場所一覧", place, no, code_key="市区町村コード")
        entity.update(_where(place))
        entity["標高"] = prop(place.elev, unit="MTR")
        entity["電話番号"] = prop(CITY_PHONE)
        for key, flag in zip(HAZARDS, flags, strict=True):
            entity[key] = prop("1" if flag == "1" else "")
        entity["指定避難所との重複"] = prop("1" if row["shelter"] == "1" else "")
        entity["想定収容人数"] = prop(row["capacity"])
        entity["対象となる町会・自治会"] = prop(row["areas"])
        out.append(_tail(entity, place))
    return out


def public_facilities(places: dict[str, Place]) -> list[Entity]:
    """公共施設一覧 (model 12)."""
    out: list[Entity] = []
    for no, row in enumerate(read_table("public.csv"), start=1):
        place = places[row["slug"]]
        days, start, end, note, _ = KIND_HOURS[row["kind"]]
        entity = _head("公共施設一覧", place, no, code_key="都道府県コード又は市区町村コード")
        entity.update(_where(place))
        if row["kind"] == "office":
            entity["電話番号"] = prop(CITY_PHONE)
        entity.update({
            "団体名": prop(CITY),
            "利用可能曜日": prop(days),
            "開始時間": prop(start),
            "終了時間": prop(end),
            "利用可能日時特記事項": prop(note),
            "説明": prop(row["description"]),
            "バリアフリー情報": prop(BARRIER_FREE.get(row["kind"], "車いす対応トイレ;エレベーター")),
        })
        out.append(_tail(entity, place))
    return out


def aeds(places: dict[str, Place]) -> list[Entity]:
    """AED設置箇所一覧 (model 01): at the public facilities, the stations and a few sights."""
    sites: list[tuple[Place, str, str | None, tuple[str, str, str, str]]] = []
    for row in read_table("public.csv"):
        days, start, end, note, position = KIND_HOURS[row["kind"]]
        sites.append((places[row["slug"]], position, CITY, (days, start, end, note)))
    for slug, place in places.items():
        if slug.endswith("-station"):
            operator = STATION_OPERATORS.get(slug, JR_WEST)
            sites.append((place, "改札口付近（駅事務室）", operator, ("毎日", "", "", "始発から終電まで")))
    airport = places["kobe-airport"]
    sites.append((airport, "2階 出発ロビー 案内所横", STATION_OPERATORS["kobe-airport"],
                  ("毎日", "", "", "旅客ターミナルの開館時間内")))
    tourism = {row["slug"]: row for row in read_table("tourism.csv")}
    for slug, position in TOURIST_AEDS.items():
        row = tourism[slug]
        sites.append((places[slug], position, None,
                      (row["days"], row["open"], row["close"], "施設の営業時間内")))

    out: list[Entity] = []
    for no, (place, position, operator, (days, start, end, note)) in enumerate(sites, start=1):
        entity = _head("AED設置箇所一覧", place, no, code_key="都道府県コード又は市区町村コード")
        entity.update(_where(place))
        entity["設置位置"] = prop(position)
        if operator:
            entity["団体名"] = prop(operator)
        entity["利用可能曜日"] = prop(days)
        if start:
            entity["開始時間"] = prop(start)
            entity["終了時間"] = prop(end)
        entity["利用可能日時特記事項"] = prop(note)
        entity["小児対応設備の有無"] = prop("有" if no % 4 else "無")
        out.append(_tail(entity, place))
    return out


def public_toilets(places: dict[str, Place]) -> list[Entity]:
    """公衆トイレ一覧 (model 08)."""
    out: list[Entity] = []
    for no, row in enumerate(read_table("toilets.csv"), start=1):
        place = places[row["slug"]]
        n = {k: int(row[k]) for k in ("m_urinal", "m_western", "m_japanese", "w_western",
                                      "w_japanese", "unisex", "multi")}
        has = ["有" if f == "1" else "無" for f in row["flags"]]
        entity = _head("公衆トイレ一覧", place, no, code_key="都道府県コード又は市区町村コード")
        entity["名称"] = prop(f"{place.name_ja}公衆トイレ")
        entity["名称_カナ"] = prop(f"{place.kana}コウシュウトイレ")
        entity["名称_英語"] = prop(f"{place.name_en} Public Toilet")
        entity["住所"] = prop(place.address)
        entity["設置位置"] = prop(row["position"])
        entity["緯度"] = prop(place.lat)
        entity["経度"] = prop(place.lon)
        entity.update({
            "男性トイレ総数": prop(n["m_urinal"] + n["m_western"] + n["m_japanese"]),
            "男性トイレ数（小便器）": prop(n["m_urinal"]),
            "男性トイレ数（和式）": prop(n["m_japanese"]),
            "男性トイレ数（洋式）": prop(n["m_western"]),
            "女性トイレ総数": prop(n["w_western"] + n["w_japanese"]),
            "女性トイレ数（和式）": prop(n["w_japanese"]),
            "女性トイレ数（洋式）": prop(n["w_western"]),
            "男女共用トイレ総数": prop(n["unisex"]),
            "男女共用トイレ数（和式）": prop(0),
            "男女共用トイレ数（洋式）": prop(n["unisex"]),
            "多機能トイレ数": prop(n["multi"]),
            "車椅子使用者用トイレ有無": prop(has[0]),
            "乳幼児用設備設置トイレ有無": prop(has[1]),
            "オストメイト設置トイレ有無": prop(has[2]),
        })
        if row["open"]:
            entity["利用開始時間"] = prop(row["open"])
            entity["利用終了時間"] = prop(row["close"])
        else:
            entity["利用可能時間特記事項"] = prop("24時間利用可能")
        out.append(_tail(entity, place))
    return out


def tourist_facilities(places: dict[str, Place]) -> list[Entity]:
    """観光施設一覧 (model 05)."""
    out: list[Entity] = []
    for no, row in enumerate(read_table("tourism.csv"), start=1):
        place = places[row["slug"]]
        entity = _head("観光施設一覧", place, no, code_key="都道府県コード又は市区町村コード")
        entity["名称_英語"] = prop(place.name_en)
        entity.update(_where(place))
        if row["days"]:
            entity["利用可能曜日"] = prop(row["days"])
        if row["open"]:
            entity["開始時間"] = prop(row["open"])
            entity["終了時間"] = prop(row["close"])
        else:
            entity["利用可能日時特記事項"] = prop("終日見学可能（店舗・社務所などは営業時間による）")
        # The model's fee columns 料金(基本) / 料金(詳細) cannot be NGSI-LD attribute names ('(' and
        # ')' are forbidden characters), so the basic fee goes into the description instead.
        fee = int(row["fee"])
        fee_text = f"料金（大人）{fee:,}円。" if fee else "入場無料。"
        entity["説明"] = prop(row["desc_ja"] + fee_text)
        entity["説明_英語"] = prop(row["desc_en"] + (f" Admission JPY {fee:,}." if fee else " Free."))
        entity["アクセス方法"] = prop(row["access"])
        out.append(_tail(entity, place))
    return out
