"""FIWARE's "CRUD Operations" tutorial for Orion (NGSI v2), steps 1-23, as raw HTTP requests.

Source: https://github.com/FIWARE/tutorials.CRUD-Operations, branch ``NGSI-v2``, README sections
"Create Operations" to "Delete Operations".  The tutorial starts from the data of its
predecessor (the store-finder ``import-data`` script); step 0 loads the part the documented
responses show — products 001-009 and InventoryItem 001, which refers to product 001 — with one
``/v2/op/update``.  Steps without a documented body are checked for the status the tutorial
names (201 created, 204 changed) and, where useful, a detail the prose promises.
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.v2_tutorial import JSON, Step

PRODUCTS = [("001", "Beer", 99, "S"), ("002", "Red Wine", 1099, "M"),
            ("003", "White Wine", 1499, "M"), ("004", "Vodka", 5000, "XL"),
            ("005", "Lager", 99, "S"), ("006", "Whisky", 99, "S"), ("007", "Gin", 99, "S"),
            ("008", "Apple Juice", 99, "S"), ("009", "Orange Juice", 99, "S"),
            ("010", "Lemonade", 99, "S"), ("011", "Brandy", 1199, "M"), ("012", "Port", 1099, "M")]


def _product(n: str, name: str, price: int, size: str) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Product:{n}", "type": "Product",
            "name": {"type": "Text", "value": name, "metadata": {}},
            "price": {"type": "Integer", "value": price, "metadata": {}},
            "size": {"type": "Text", "value": size, "metadata": {}}}


def _without_metadata(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: ({"type": v["type"], "value": v["value"]} if isinstance(v, dict) else v)
            for k, v in attrs.items()}


IMPORT_DATA = json.dumps({"actionType": "append", "entities": [
    *(_without_metadata(_product(*p)) for p in PRODUCTS[:9]),
    {"id": "urn:ngsi-ld:InventoryItem:001", "type": "InventoryItem",
     "refProduct": {"type": "Relationship", "value": "urn:ngsi-ld:Product:001"},
     "stockCount": {"type": "Integer", "value": 10000}}]})

LEMONADE = _product(*PRODUCTS[9])
BEER = {**_product(*PRODUCTS[0]),
        "offerPrice": {"type": "Integer", "value": 89, "metadata": {}},
        "specialOffer": {"type": "Boolean", "value": True, "metadata": {}}}
ALL_PRODUCTS = [BEER, *(_product(*p) for p in PRODUCTS[1:])]

STEP1 = ''' {
      "id":"urn:ngsi-ld:Product:010", "type":"Product",
      "name":{"type":"Text", "value":"Lemonade"},
      "size":{"type":"Text", "value": "S"},
      "price":{"type":"Integer", "value": 99}
}'''
BRANDY_AND_PORT = '''
    {
      "id":"urn:ngsi-ld:Product:011", "type":"Product",
      "name":{"type":"Text", "value":"Brandy"},
      "size":{"type":"Text", "value": "M"},
      "price":{"type":"Integer", "value": 1199}
    },
    {
      "id":"urn:ngsi-ld:Product:012", "type":"Product",
      "name":{"type":"Text", "value":"Port"},
      "size":{"type":"Text", "value": "M"},
      "price":{"type":"Integer", "value": 1099}
    }'''
STEP5 = ('{\n  "actionType":"append_strict",\n  "entities":[' + BRANDY_AND_PORT + ''',
    {
      "id":"urn:ngsi-ld:Product:001", "type":"Product",
      "offerPrice":{"type":"Integer", "value": 89}
    }
  ]
}''')
STEP6 = '{\n  "actionType":"append",\n  "entities":[' + BRANDY_AND_PORT + "\n  ]\n}"
STEP15 = ''' {
      "price":{"type":"Integer", "value": 89},
      "name": {"type":"Text", "value": "Ale"}
}'''


def _batch(action: str, entities: str) -> str:
    return '{\n  "actionType":"' + action + '",\n  "entities":[\n' + entities + "\n  ]\n}"


STEP16 = _batch("update", '''    {
      "id":"urn:ngsi-ld:Product:001", "type":"Product",
      "price":{"type":"Integer", "value": 1199}
    },
    {
      "id":"urn:ngsi-ld:Product:002", "type":"Product",
      "price":{"type":"Integer", "value": 1199},
      "size": {"type":"Text", "value": "L"}
    }''')
STEP17 = _batch("append", '''    {
      "id":"urn:ngsi-ld:Product:001", "type":"Product",
      "price":{"type":"Integer", "value": 1199}
    },
    {
      "id":"urn:ngsi-ld:Product:002", "type":"Product",
      "price":{"type":"Integer", "value": 1199},
      "specialOffer": {"type":"Boolean", "value":  true}
    }''')
STEP18 = _batch("replace", '''    {
      "id":"urn:ngsi-ld:Product:010", "type":"Product",
      "price":{"type":"Integer", "value": 1199}
    }''')
STEP21 = _batch("delete", '''    {
      "id":"urn:ngsi-ld:Product:001", "type":"Product"
    },
    {
      "id":"urn:ngsi-ld:Product:002", "type":"Product"
    }''')
STEP22 = _batch("delete", '''    {
      "id":"urn:ngsi-ld:Product:003", "type":"Product",
      "price":{},
      "name": {}
    }''')


def _has_special_offer(body: Any) -> None:
    """Step 4: "there is now a boolean specialOffer flag attached to the Beer Product"."""
    assert body["specialOffer"] == {"type": "Boolean", "value": True, "metadata": {}}


P = "/v2/entities/urn:ngsi-ld:Product"
CRUD = [
    Step("0 import-data (previous tutorial)", "POST", "/v2/op/update", 204, IMPORT_DATA, JSON),
    Step("1 create Product 010", "POST", "/v2/entities", 201, STEP1, JSON),
    Step("2 read it back", "GET", f"{P}:010", 200, response=LEMONADE),
    Step("3 add specialOffer", "POST", f"{P}:001/attrs", 204,
         '{\n      "specialOffer":{"value": true}\n}', JSON),
    Step("4 read Beer", "GET", f"{P}:001", 200, check=_has_special_offer),
    Step("5 batch append_strict", "POST", "/v2/op/update", 204, STEP5, JSON),
    Step("6 batch append", "POST", "/v2/op/update", 204, STEP6, JSON),
    Step("7 read verbose", "GET", f"{P}:010", 200, response=LEMONADE),
    Step("8 read one value", "GET", f"{P}:001/attrs/name/value", 200, response="Beer"),
    Step("9 keyValues", "GET", f"{P}:001?options=keyValues&attrs=name,price", 200,
         response={"id": "urn:ngsi-ld:Product:001", "type": "Product", "name": "Beer",
                   "price": 99}),
    Step("10 values", "GET", f"{P}:001?options=values&attrs=name,price", 200,
         response=["Beer", 99]),
    Step("11 list verbose", "GET", "/v2/entities?type=Product", 200, response=ALL_PRODUCTS),
    Step("12 list keyValues", "GET", "/v2/entities/?type=Product&options=keyValues&attrs=name,price",
         200, response=[{"id": e["id"], "type": "Product", "name": e["name"]["value"],
                         "price": e["price"]["value"]} for e in ALL_PRODUCTS]),
    Step("13 list ids", "GET", "/v2/entities/?type=Product&options=count&attrs=id", 200,
         response=[{"id": e["id"], "type": "Product"} for e in ALL_PRODUCTS],
         response_headers={"Fiware-Total-Count": "12"}),
    Step("14 put a value", "PUT", f"{P}:001/attrs/price/value", 204, "89",
         {"Content-Type": "text/plain"}),
    Step("15 patch attrs", "PATCH", f"{P}:001/attrs", 204, STEP15, JSON),
    Step("16 batch update", "POST", "/v2/op/update", 204, STEP16, JSON),
    Step("17 batch append", "POST", "/v2/op/update", 204, STEP17, JSON),
    Step("18 batch replace", "POST", "/v2/op/update", 204, STEP18, JSON),
    Step("19 delete Product 010", "DELETE", f"{P}:010", 204),
    Step("20 delete an attribute", "DELETE", f"{P}:001/attrs/specialOffer", 204),
    Step("21 batch delete entities", "POST", "/v2/op/update", 204, STEP21, JSON),
    Step("22 batch delete attributes", "POST", "/v2/op/update", 204, STEP22, JSON),
    Step("23 dangling references", "GET",
         "/v2/entities/?q=refProduct==urn:ngsi-ld:Product:001&options=count&attrs=type", 200,
         response=[{"id": "urn:ngsi-ld:InventoryItem:001", "type": "InventoryItem"}]),
]
