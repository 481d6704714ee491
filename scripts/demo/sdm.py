"""Builders for the FIWARE Smart Data Models entities of the demo: weather, air quality, parking
and street lighting.  Every measured value is synthetic, drawn from ``rng`` around plausible
levels for a late-November evening in Kobe."""

from __future__ import annotations

import math
import random
from typing import Any

from demo.common import (
    CORE_CONTEXT,
    DATA_PROVIDER,
    JST,
    SNAPSHOT,
    address,
    date_time,
    distance_m,
    geo,
    iso,
    lang,
    minutes_before,
    offset,
    prop,
    rel,
    urn,
)

Entity = dict[str, Any]

# slug, ward, name (ja), name (en), street, lat, lon, elevation (m)
WEATHER_STATIONS = [
    ("sannomiya", "中央区", "三宮（市役所屋上）", "Sannomiya (City Hall roof)", "加納町6-5-1",
     34.6903, 135.1952, 5),
    ("port-island", "中央区", "ポートアイランド", "Port Island", "港島中町7丁目",
     34.6655, 135.2105, 5),
    ("kobe-airport", "中央区", "神戸空港", "Kobe Airport", "神戸空港1", 34.6335, 135.2250, 5),
    ("higashinada", "東灘区", "東灘", "Higashinada", "住吉東町5丁目", 34.7195, 135.2641, 15),
    ("nada", "灘区", "王子公園", "Oji Park", "王子町3丁目", 34.7118, 135.2120, 35),
    ("hyogo", "兵庫区", "湊川公園", "Minatogawa Park", "荒田町1丁目", 34.6826, 135.1692, 15),
    ("suma", "須磨区", "須磨離宮公園", "Suma Rikyu Park", "東須磨1", 34.6594, 135.1115, 60),
    ("tarumi", "垂水区", "垂水", "Tarumi", "日向1丁目", 34.6306, 135.0561, 10),
    ("suzurandai", "北区", "鈴蘭台", "Suzurandai", "鈴蘭台北町1丁目", 34.7300, 135.1455, 280),
    ("arima", "北区", "有馬", "Arima", "有馬町", 34.7972, 135.2470, 360),
    ("seishin", "西区", "西神中央", "Seishin-chuo", "糀台5丁目", 34.6772, 135.0035, 120),
    ("rokkosan", "灘区", "六甲山上", "Mt. Rokko summit area", "六甲山町", 34.7705, 135.2500, 880),
]

# slug, ward, name (ja), name (en), street, lat, lon, roadside station?
AIR_STATIONS = [
    ("higashinada", "東灘区", "東灘", "Higashinada", "本山南町", 34.7200, 135.2735, False),
    ("route43", "東灘区", "国道43号青木", "Route 43 Oogi", "青木", 34.7162, 135.2840, True),
    ("nada", "灘区", "灘", "Nada", "大石東町", 34.7085, 135.2290, False),
    ("fukiai", "中央区", "葺合", "Fukiai", "野崎通", 34.6990, 135.2035, False),
    ("sannomiya", "中央区", "三宮", "Sannomiya", "三宮町1丁目", 34.6918, 135.1935, True),
    ("port-island", "中央区", "港島", "Port Island", "港島中町", 34.6690, 135.2100, False),
    ("hyogo-nanbu", "兵庫区", "兵庫南部", "Hyogo-nanbu", "吉田町", 34.6610, 135.1560, False),
    ("nagata", "長田区", "長田", "Nagata", "北町", 34.6632, 135.1482, False),
    ("suma", "須磨区", "須磨", "Suma", "大黒町", 34.6555, 135.1280, False),
    ("tarumi", "垂水区", "垂水", "Tarumi", "日向", 34.6325, 135.0570, False),
    ("kita", "北区", "北", "Kita", "鈴蘭台北町", 34.7310, 135.1462, False),
    ("seishin", "西区", "西神", "Seishin", "糀台", 34.6760, 135.0050, False),
]

# slug, ward, name (ja), name (en), street, lat, lon, total spots, layout, yen per 30 min,
# occupancy around the snapshot; the "openSpace" lots have 8 sensor-equipped ParkingSpots
PARKINGS = [
    ("sannomiya", "中央区", "三宮中央駐車場", "Sannomiya Central Parking", "三宮町1丁目",
     34.6915, 135.1928, 420, "multiLevel", 330, 0.86),
    ("motomachi", "中央区", "元町駐車場", "Motomachi Parking", "元町通2丁目",
     34.6890, 135.1850, 180, "multiLevel", 300, 0.81),
    ("harborland", "中央区", "ハーバーランド駐車場", "Harborland Parking", "東川崎町1丁目",
     34.6805, 135.1815, 600, "multiLevel", 300, 0.72),
    ("shin-kobe", "中央区", "新神戸駅前駐車場", "Shin-Kobe Station Parking", "加納町1丁目",
     34.7060, 135.1965, 250, "multiLevel", 300, 0.77),
    ("rokkomichi", "灘区", "六甲道駅南駐車場", "Rokkomichi South Parking", "深田町4丁目",
     34.7138, 135.2392, 150, "underground", 200, 0.69),
    ("sumiyoshi", "東灘区", "住吉駅前駐車場", "Sumiyoshi Station Parking", "住吉本町1丁目",
     34.7198, 135.2612, 120, "multiLevel", 200, 0.74),
    ("shin-nagata", "長田区", "新長田駅前駐車場", "Shin-Nagata Station Parking", "若松町5丁目",
     34.6578, 135.1450, 40, "openSpace", 200, 0.65),
    ("myodani", "須磨区", "名谷駅前駐車場", "Myodani Station Parking", "中落合2丁目",
     34.6720, 135.0980, 60, "openSpace", 200, 0.88),
    ("tarumi", "垂水区", "垂水駅前駐車場", "Tarumi Station Parking", "神田町",
     34.6305, 135.0540, 48, "openSpace", 200, 0.79),
    ("seishin-chuo", "西区", "西神中央駅前駐車場", "Seishin-chuo Station Parking", "糀台5丁目",
     34.6745, 135.0035, 80, "openSpace", 200, 0.91),
    ("suzurandai", "北区", "鈴蘭台駅前駐車場", "Suzurandai Station Parking", "鈴蘭台北町1丁目",
     34.7285, 135.1448, 30, "openSpace", 200, 0.57),
    ("arima-onsen", "北区", "有馬温泉観光駐車場", "Arima Onsen Visitor Parking", "有馬町",
     34.7962, 135.2462, 50, "openSpace", 300, 0.46),
]

# slug, ward, street name (ja), (en), start (lat, lon), end (lat, lon), lamp rating (W)
LIGHT_GROUPS = [
    ("flower-road", "中央区", "フラワーロード", "Flower Road",
     (34.6880, 135.1962), (34.6935, 135.1962), 120),
    ("tor-road", "中央区", "トアロード", "Tor Road", (34.6900, 135.1890), (34.6970, 135.1898), 90),
    ("kitano-zaka", "中央区", "北野坂", "Kitano-zaka", (34.6955, 135.1925), (34.6995, 135.1922), 90),
    ("sannomiya-chuo-dori", "中央区", "三宮中央通り", "Sannomiya Chuo-dori",
     (34.6922, 135.1905), (34.6925, 135.1950), 90),
    ("rokkomichi", "灘区", "六甲道駅前通り", "Rokkomichi Station Street",
     (34.7142, 135.2345), (34.7146, 135.2400), 100),
    ("shin-nagata", "長田区", "大正筋", "Taisho-suji", (34.6575, 135.1455), (34.6555, 135.1485), 80),
    ("tarumi", "垂水区", "垂水駅前通り", "Tarumi Station Street",
     (34.6312, 135.0520), (34.6315, 135.0580), 100),
    ("seishin-chuo", "西区", "西神中央駅前通り", "Seishin-chuo Station Street",
     (34.6748, 135.0015), (34.6765, 135.0075), 120),
]
LIGHTS_PER_GROUP = 8
SPOTS_PER_LOT = 8


def _ctx(model_context: str) -> list[str]:
    """An entity's @context: its model's context, then the NGSI-LD core context."""
    return [model_context, CORE_CONTEXT]


def weather(rng: random.Random, ctx: dict[str, str]) -> list[Entity]:
    """WeatherObserved entities, each with the Device that measured it."""
    out: list[Entity] = []
    observed_at = minutes_before(10)  # 17:20, the last 10-minute report before the snapshot
    when = iso(observed_at)
    sea_level_pressure = 1019.4
    for slug, ward, ja, en, street, lat, lon, elev in WEATHER_STATIONS:
        device_id = urn("Device", f"weather-{slug}")
        temperature = round(13.1 - 0.0065 * elev + rng.gauss(0, 0.35), 1)
        humidity = round(min(0.95, max(0.35, 0.6 + 0.00012 * elev + rng.gauss(0, 0.04))), 2)
        pressure = round(sea_level_pressure * (1 - 0.0065 * elev / 288.15) ** 5.255
                         + rng.gauss(0, 0.3), 1)
        exposed = elev > 500 or slug in ("port-island", "kobe-airport")
        wind = round(max(0.3, rng.uniform(3.5, 7.5) if exposed else rng.uniform(1.2, 4.0)), 1)
        direction = round(rng.uniform(290, 340))
        # dew point from the Magnus formula
        gamma = math.log(humidity) + 17.62 * temperature / (243.12 + temperature)
        dew_point = round(243.12 * gamma / (17.62 - gamma), 1)
        out.append({
            "id": urn("WeatherObserved", slug),
            "type": "WeatherObserved",
            "name": lang(f"{ja} 気象観測点", f"{en} weather station"),
            "address": address(ward, street),
            "location": geo(lat, lon),
            "dateObserved": prop(date_time(observed_at)),
            "temperature": prop(temperature, unit="CEL", observed=when),
            "relativeHumidity": prop(humidity, unit="C62", observed=when),
            "dewPoint": prop(dew_point, unit="CEL", observed=when),
            "atmosphericPressure": prop(pressure, unit="A97", observed=when),
            "windSpeed": prop(wind, unit="MTS", observed=when),
            "windDirection": prop(direction, unit="DD", observed=when),
            "precipitation": prop(0.0, unit="MMT", observed=when),
            "dataProvider": prop(DATA_PROVIDER),
            "refDevice": rel(device_id),
            "@context": _ctx(ctx["WeatherObserved"]),
        })
        installed = SNAPSHOT.replace(year=2022 + rng.randrange(3), month=rng.choice([4, 6, 10]),
                                     day=1, hour=10, minute=0)
        out.append({
            "id": device_id,
            "type": "Device",
            "name": lang(f"{ja} 気象センサー", f"{en} weather sensor"),
            "deviceCategory": prop(["sensor"]),
            "controlledProperty": prop(["temperature", "humidity", "atmosphericPressure",
                                        "windSpeed", "windDirection", "precipitation"]),
            "serialNumber": prop(f"KBW-{rng.randrange(10_000, 99_999)}"),
            "firmwareVersion": prop("2.4.1"),
            "dateInstalled": prop(date_time(installed.astimezone(JST))),
            "batteryLevel": prop(round(rng.uniform(0.62, 1.0), 2), observed=when),
            "deviceState": prop("ok"),
            "location": geo(lat, lon),
            "@context": _ctx(ctx["Device"]),
        })
    return out


def _aqi_pm25(pm25: float) -> int:
    """US EPA (2024) AQI sub-index for PM2.5, enough for the 'good'/'moderate' range."""
    if pm25 <= 9.0:
        return round(pm25 / 9.0 * 50)
    return round(51 + (min(pm25, 35.4) - 9.1) / (35.4 - 9.1) * 49)


def air_quality(rng: random.Random, ctx: dict[str, str]) -> list[Entity]:
    """AirQualityObserved entities for hourly monitoring stations (values for 16:00-17:00)."""
    stations = {s[0]: (s[5], s[6]) for s in WEATHER_STATIONS}
    observed_at = SNAPSHOT.replace(minute=0)
    when = iso(observed_at)
    out: list[Entity] = []
    for slug, ward, ja, en, street, lat, lon, roadside in AIR_STATIONS:
        nearest = min(stations, key=lambda s: distance_m((lat, lon), stations[s]))
        no2 = round(rng.uniform(0.022, 0.036) if roadside else rng.uniform(0.008, 0.021), 3)
        pm25 = round(rng.uniform(7.0, 16.0) + (2.0 if roadside else 0.0), 1)
        aqi = _aqi_pm25(pm25)
        entity: Entity = {
            "id": urn("AirQualityObserved", slug),
            "type": "AirQualityObserved",
            "name": lang(f"{ja} 大気測定局", f"{en} air monitoring station"),
            "address": address(ward, street),
            "location": geo(lat, lon),
            "areaServed": prop(ward),
            "typeofLocation": prop("outdoor"),
            "dateObserved": prop(date_time(observed_at)),
            "no2": prop(no2, unit="59", observed=when),
            "so2": prop(round(rng.uniform(0.001, 0.003), 3), unit="59", observed=when),
            "o3": prop(round(rng.uniform(0.014, 0.030), 3), unit="59", observed=when),
            "pm25": prop(pm25, unit="GQ", observed=when),
            "pm10": prop(round(pm25 * rng.uniform(1.5, 2.0), 1), unit="GQ", observed=when),
        }
        if roadside:
            entity["co"] = prop(round(rng.uniform(0.3, 0.5), 1), unit="59", observed=when)
        entity.update({
            "airQualityIndex": prop(aqi, observed=when),
            "airQualityLevel": prop("good" if aqi <= 50 else "moderate", observed=when),
            "reliability": prop(round(rng.uniform(0.85, 0.98), 2)),
            "dataProvider": prop(DATA_PROVIDER),
            "refWeatherObserved": rel(urn("WeatherObserved", nearest)),
            "@context": _ctx(ctx["AirQualityObserved"]),
        })
        out.append(entity)
    return out


def parking(rng: random.Random, ctx: dict[str, str]) -> list[Entity]:
    """OffStreetParking sites and, for the open-air lots, their sensor-equipped ParkingSpots."""
    out: list[Entity] = []
    for (slug, ward, ja, en, street, lat, lon, total, layout, price,
         occupancy) in PARKINGS:
        site_id = urn("OffStreetParking", slug)
        occupied = min(total, max(0, round(total * (occupancy + rng.uniform(-0.04, 0.04)))))
        when = iso(minutes_before(rng.uniform(0.5, 4)))
        category = ["public", "feeCharged", "shortTerm", "barrierAccess",
                    {"multiLevel": "parkingGarage", "underground": "underground",
                     "openSpace": "parkingLot"}[layout]]
        out.append({
            "id": site_id,
            "type": "OffStreetParking",
            "name": lang(ja, en),
            "description": prop(f"{ja}（{ward}）。24時間営業、{price}円/30分。"),
            "address": address(ward, street),
            "location": geo(lat, lon),
            "category": prop(category),
            "layout": prop([layout]),
            "allowedVehicleType": prop(["car"]),
            "chargeType": prop(["temporaryPrice"]),
            "acceptedPaymentMethod": prop(["Cash"]),
            "priceRatePerMinute": prop(round(price / 30, 2)),
            "priceCurrency": prop("JPY"),
            "openingHours": prop(["Mo-Su 00:00-24:00"]),
            "maximumParkingDuration": prop("PT24H"),
            "totalSpotNumber": prop(total),
            "occupiedSpotNumber": prop(occupied, observed=when),
            "availableSpotNumber": prop(total - occupied, observed=when),
            "occupancy": prop(round(occupied / total, 2), observed=when),
            "dataProvider": prop(DATA_PROVIDER),
            "@context": _ctx(ctx["OffStreetParking"]),
        })
        if layout != "openSpace":
            continue
        for n in range(SPOTS_PER_LOT):
            row, col = divmod(n, SPOTS_PER_LOT // 2)
            spot_lat, spot_lon = offset(lat, lon, 6.0 if row == 0 else -6.0, (col - 1.5) * 2.6)
            status = "occupied" if rng.random() < occupied / total else "free"
            label = f"{'AB'[row]}-{col + 1:02d}"
            out.append({
                "id": urn("ParkingSpot", f"{slug}-{label.replace('-', '').lower()}"),
                "type": "ParkingSpot",
                "name": prop(label),
                "description": prop(f"{ja} {label}区画（車室センサー付き）"),
                "category": prop(["offStreet"]),
                "location": geo(spot_lat, spot_lon),
                "status": prop(status, observed=iso(minutes_before(rng.uniform(0, 90)))),
                "width": prop(2.5, unit="MTR"),
                "length": prop(5.0, unit="MTR"),
                "refParkingSite": rel(site_id),
                "@context": _ctx(ctx["ParkingSpot"]),
            })
    return out


def street_lights(rng: random.Random, ctx: dict[str, str]) -> list[Entity]:
    """StreetlightGroups (one per street) and their Streetlights, switched on at dusk."""
    out: list[Entity] = []
    switched_on = SNAPSHOT.replace(hour=16, minute=52)
    defective = set(rng.sample(range(len(LIGHT_GROUPS) * LIGHTS_PER_GROUP), 3))
    for g, (slug, ward, ja, en, start, end, rating) in enumerate(LIGHT_GROUPS):
        group_id = urn("StreetlightGroup", slug)
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        out.append({
            "id": group_id,
            "type": "StreetlightGroup",
            "name": lang(f"{ja} 街路灯", f"{en} street lights"),
            "description": prop(f"{ja}沿いの街路灯{LIGHTS_PER_GROUP}基をまとめて制御するグループ"),
            "address": address(ward, ""),
            "areaServed": prop(ja),
            "location": geo(*mid),
            "powerState": prop("on", observed=iso(switched_on)),
            "switchingMode": prop(["night-ON"]),
            "dateLastSwitchingOn": prop(date_time(switched_on)),
            "@context": _ctx(ctx["StreetlightGroup"]),
        })
        for n in range(LIGHTS_PER_GROUP):
            frac = n / (LIGHTS_PER_GROUP - 1)
            lat = start[0] + (end[0] - start[0]) * frac
            lon = start[1] + (end[1] - start[1]) * frac
            lat, lon = offset(lat, lon, rng.uniform(-3, 3), rng.uniform(-3, 3))
            broken = g * LIGHTS_PER_GROUP + n in defective
            when = iso(minutes_before(rng.uniform(0, 5)))
            level = 0.0 if broken else rng.choice([0.8, 1.0, 1.0])
            power = 0.0 if broken else round(rating * level * rng.uniform(0.93, 1.03), 1)
            lamp_changed = SNAPSHOT.replace(year=2019 + rng.randrange(6), month=rng.randrange(1, 13),
                                            day=rng.randrange(1, 28), hour=10, minute=0)
            out.append({
                "id": urn("Streetlight", f"{slug}-{n + 1:02d}"),
                "type": "Streetlight",
                "location": geo(lat, lon),
                "areaServed": prop(ja),
                "status": prop("defectiveLamp" if broken else "ok", observed=when),
                "powerState": prop("off" if broken else "on", observed=when),
                "illuminanceLevel": prop(level, observed=when),
                "powerConsumption": prop(power, unit="WTT", observed=when),
                "powerRating": prop(rating, unit="WTT"),
                "lanternHeight": prop(rng.choice([8, 10, 10, 12]), unit="MTR"),
                "locationCategory": prop("sidewalk" if n % 2 else "road"),
                "controllingMethod": prop("group"),
                "circuit": prop(f"KB-{slug.upper()}-C{n // 4 + 1}"),
                "streetPoleNum": prop(f"{g + 1:02d}-{n + 1:03d}"),
                "dateLastLampChange": prop(date_time(lamp_changed)),
                "refStreetlightGroup": rel(group_id),
                "@context": _ctx(ctx["Streetlight"]),
            })
    return out
