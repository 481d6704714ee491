"""Units of the NGSI v2 face: the id mapping, the render contract for notifiers, the q translation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cityos.data.ngsild.qlang import q_matches
from cityos.data.ngsild.terms import core_only
from cityos.data.ngsiv2 import KEY_VALUES, VALUES, render_entity
from cityos.data.ngsiv2.mapping import V2_PREFIX, check_identifier, to_ld_id, to_v2_id
from cityos.data.ngsiv2.qlang import parse_v2_query

V2_CHARS = st.sampled_from(list("!$%*+,-.:@[\\]^_`{|}~") + [chr(c) for c in range(48, 123)
                                                           if chr(c).isalnum()])
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


@given(st.text(V2_CHARS, min_size=1, max_size=40))
def test_every_valid_v2_id_maps_to_a_uri_and_back(v2_id: str) -> None:
    check_identifier(v2_id, "entity id")
    if v2_id.startswith(V2_PREFIX):
        return
    ld = to_ld_id(v2_id)
    assert ":" in ld and " " not in ld
    assert to_v2_id(ld) == v2_id


ENTITY = {
    "id": "urn:ngsi-v2:Room1", "type": [VOCAB + "Room"],
    "createdAt": "2026-11-26T00:00:00.123456Z", "modifiedAt": "2026-11-26T01:00:00.000000Z",
    "attrs": {
        VOCAB + "temperature": [{"type": "Property", "value": 21, "v2type": "Number",
                                 "createdAt": "2026-11-26T00:00:00.123456Z",
                                 "modifiedAt": "2026-11-26T01:00:00.000000Z",
                                 "sub": {VOCAB + "accuracy": {"type": "Property", "value": 1}}}],
        VOCAB + "owner": [{"type": "Relationship", "object": "urn:ngsi-v2:Person1",
                           "createdAt": "x", "modifiedAt": "x"}],
        VOCAB + "names": [{"type": "LanguageProperty", "languageMap": {"ja": "会議室"},
                           "createdAt": "x", "modifiedAt": "x"}],
    }}


def test_render_contract_for_notifiers() -> None:
    normalized = render_entity(ENTITY)
    assert normalized == {
        "id": "Room1", "type": "Room",
        "temperature": {"type": "Number", "value": 21,
                        "metadata": {"accuracy": {"type": "Number", "value": 1}}},
        "owner": {"type": "Relationship", "value": "Person1", "metadata": {}},
        "names": {"type": "LanguageProperty", "value": {"ja": "会議室"}, "metadata": {}}}
    assert render_entity(ENTITY, form=KEY_VALUES, attrs=["temperature", "dateCreated"]) == \
        {"id": "Room1", "type": "Room", "temperature": 21,
         "dateCreated": "2026-11-26T00:00:00.123Z"}
    assert render_entity(ENTITY, form=VALUES, attrs=["owner", "temperature"]) == ["Person1", 21]
    assert set(render_entity(ENTITY, except_attrs=["owner", "names"])) == \
        {"id", "type", "temperature"}
    with_meta = render_entity(ENTITY, attrs=["temperature"], metadata=["dateModified"])
    assert with_meta["temperature"]["metadata"] == {
        "dateModified": {"type": "DateTime", "value": "2026-11-26T01:00:00.000Z"}}


def test_v2_queries_run_on_the_broker_evaluator() -> None:
    tm = core_only()
    assert q_matches(parse_v2_query("temperature>20;owner==Person1", tm), ENTITY)
    assert not q_matches(parse_v2_query("temperature==1..20", tm), ENTITY)
    assert q_matches(parse_v2_query("!pressure;temperature!=5,6", tm), ENTITY)
    assert q_matches(parse_v2_query("temperature.accuracy==1", tm, metadata=True), ENTITY)
    assert not q_matches(parse_v2_query("temperature=='21'", tm), ENTITY)
