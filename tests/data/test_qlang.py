"""Tests of the NGSI-LD query language (``q``): parsing, expansion and evaluation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.qlang import (
    And,
    AttrPath,
    Comparison,
    Exists,
    Literal,
    Not,
    Or,
    QNode,
    Range,
    ValueList,
    attribute_iris,
    expand_q,
    parse_q,
    q_matches,
)

DC = "https://uri.etsi.org/ngsi-ld/default-context/"
EX = "https://example.org/"


def expand(term: str) -> str:
    return term if ":" in term and "//" in term else DC + term


def q(text: str, entity: dict[str, Any]) -> bool:
    return q_matches(expand_q(parse_q(text), expand), entity)


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def entity(**attrs: Any) -> dict[str, Any]:
    """An entity in the internal form; each keyword is a compact name -> instance or list."""
    return {
        "id": "urn:ngsi-ld:Thing:1",
        "type": [DC + "Thing"],
        "createdAt": "2026-01-01T00:00:00.000000Z",
        "modifiedAt": "2026-01-01T00:00:00.000000Z",
        "attrs": {DC + name: (inst if isinstance(inst, list) else [inst])
                  for name, inst in attrs.items()},
    }


WEATHER = entity(
    temperature=prop(12.5, unitCode="CEL", observedAt="2026-11-25T00:00:00.000Z",
                     sub={DC + "accuracy": prop(0.5, observedAt="2026-11-25T00:00:00Z")}),
    humidity=prop(80),
    name={"type": "LanguageProperty", "languageMap": {"ja": "神戸市役所", "en": "Kobe City Hall"}},
    status=prop("open"),
    isOpen=prop(True),
    tags=prop(["red", "blue"]),
    address=prop({"city": "Kobe", "ward": {"name": "Chuo"}, "lines": ["1-5-1", "Kano-cho"]}),
    controlledBy={"type": "Relationship", "object": "urn:ngsi-ld:Device:42",
                  "objectType": DC + "Device"},
    feeds={"type": "ListRelationship",
           "objectList": ["urn:ngsi-ld:Feed:1", "urn:ngsi-ld:Feed:2"]},
    category={"type": "VocabProperty", "vocab": EX + "vocab/Municipal"},
    readings={"type": "ListProperty", "valueList": [3, 7, 11]},
    raw={"type": "JsonProperty", "json": {"pm": {"pm25": 12, "pm10": 40}, "ok": True}},
    startedAt=prop({"@type": "DateTime", "@value": "2026-01-01T09:00:00+09:00"}),
    opening=prop("09:30:00Z"),
    day=prop("2026-04-01"),
    nan=prop(float("nan")),
)


# ------------------------------------------------------------------------------- parsing

def test_parse_existence_and_comparison_shapes() -> None:
    assert parse_q("temperature") == Exists(AttrPath("temperature"))
    assert parse_q("!temperature") == Not(Exists(AttrPath("temperature")))
    node = parse_q("temperature>=20")
    assert node == Comparison(AttrPath("temperature"), ">=", Literal("number", 20, "20"))


def test_and_binds_tighter_than_or() -> None:
    node = parse_q("a==1;b==2|c==3;d")
    assert isinstance(node, Or)
    assert [type(item) for item in node.items] == [And, And]
    node = parse_q("a|b;c")
    assert isinstance(node, Or) and isinstance(node.items[1], And)


def test_parentheses_override_precedence() -> None:
    node = parse_q("(a|b);c")
    assert isinstance(node, And) and isinstance(node.items[0], Or)
    node = parse_q("((speed>50|rpm>3000);brandName==\"Mercedes\")")
    assert isinstance(node, And)


def test_and_or_accept_lists_and_compare_equal_to_tuples() -> None:
    a, b = Exists(AttrPath("a")), Exists(AttrPath("b"))
    assert And([a, b]) == And((a, b)) == parse_q("a;b")
    assert Or([a, b]) == parse_q("a|b")
    assert hash(parse_q("(a|b);c==1,2")) == hash(parse_q("(a|b);c==1,2"))


def test_every_operator_parses() -> None:
    for op in ("==", "!=", ">=", ">", "<=", "<"):
        node = parse_q(f"a{op}5")
        assert isinstance(node, Comparison) and node.op == op
    for op in ("~=", "!~="):
        node = parse_q(f'a{op}"^K"')
        assert isinstance(node, Comparison) and node.op == op
        assert isinstance(node.value, Literal) and node.value.kind == "pattern"


def test_literal_kinds() -> None:
    def value(text: str) -> Any:
        node = parse_q("a==" + text)
        assert isinstance(node, Comparison)
        return node.value

    assert value("true") == Literal("boolean", True, "true")
    assert value("-1.5e2").value == -150.0
    assert value('"x"').kind == "string"
    assert value("urn:ngsi-ld:Device:42").kind == "uri"
    assert value("2026-01-01T09:00:00+09:00").kind == "datetime"
    assert value("2026-01-01").kind == "date"
    assert value("09:00:00Z").kind == "time"
    assert value("1..5") == Range(Literal("number", 1, "1"), Literal("number", 5, "5"))
    assert value('"a","b"') == ValueList((Literal("string", "a", '"a"'),
                                          Literal("string", "b", '"b"')))


def test_quoted_strings_keep_delimiters_and_escapes() -> None:
    node = parse_q(r'a=="x;y|z),w\"q\\e\u00e9";b')
    assert isinstance(node, And)
    first = node.items[0]
    assert isinstance(first, Comparison)
    assert first.value == Literal("string", 'x;y|z),w"q\\eé', r'"x;y|z),w\"q\\e\u00e9"')


def test_paths() -> None:
    node = parse_q("sensor.rawdata[airquality.particulate]==40")
    assert isinstance(node, Comparison)
    assert node.path == AttrPath("sensor", ("rawdata",), ("airquality", "particulate"))
    node = parse_q("temperature.observedAt>=2026-01-01T00:00:00Z")
    assert isinstance(node, Comparison)
    assert node.path == AttrPath("temperature", ("observedAt",), ())
    assert parse_q("a[b][c]") == Exists(AttrPath("a", (), ("b", "c")))
    assert parse_q("ex:temp") == Exists(AttrPath("ex:temp"))
    assert parse_q("名前") == Exists(AttrPath("名前"))


def test_whitespace_between_tokens_is_tolerated() -> None:
    assert parse_q(" ( a == 1 ; b ) | c ") == parse_q("(a==1;b)|c")


def test_form_decoded_plus_in_offset_is_recovered() -> None:
    assert parse_q("t>2026-01-01T09:00:00 09:00") == parse_q("t>2026-01-01T09:00:00+09:00")


# ----------------------------------------------------------------------------- expansion

def test_expand_q_expands_names_but_not_meta_members_or_trailing_paths() -> None:
    node = expand_q(parse_q("temperature.accuracy.observedAt>2026-01-01;!x|addr[city.name]"),
                    expand)
    assert isinstance(node, Or)
    first = node.items[0]
    assert isinstance(first, And)
    cmp_, neg = first.items
    assert isinstance(cmp_, Comparison) and isinstance(neg, Not)
    assert cmp_.path == AttrPath(DC + "temperature", (DC + "accuracy", "observedAt"), ())
    assert neg.node.path.attr == DC + "x"
    assert node.items[1] == Exists(AttrPath(DC + "addr", (), ("city", "name")))


def test_attribute_iris() -> None:
    node = expand_q(parse_q("(a.b==1|!c);d[e]~=x;a"), expand)
    assert attribute_iris(node) == {DC + "a", DC + "c", DC + "d"}


# ---------------------------------------------------------------------------- evaluation

@pytest.mark.parametrize(("text", "expected"), [
    ("temperature", True),
    ("pressure", False),
    ("!pressure", True),
    ("!temperature", False),
    ("temperature==12.5", True),
    ("temperature!=12.5", False),
    ("temperature!=13", True),
    ("temperature>12", True),
    ("temperature>12.5", False),
    ("temperature>=12.5", True),
    ("temperature<13", True),
    ("temperature<12.5", False),
    ("temperature<=12.5", True),
    ("humidity==80", True),
    ("humidity==80.0", True),
    ('status=="open"', True),
    ('status>"ope"', True),
    ('status<"open"', False),
    ("status==open", True),
    ("isOpen==true", True),
    ("isOpen==false", False),
    ("isOpen==1", False),
    ("pressure!=1", False),
])
def test_basic_operators(text: str, expected: bool) -> None:
    assert q(text, WEATHER) is expected


def test_type_mismatch_never_matches_but_counts_as_unequal() -> None:
    assert q('temperature=="12.5"', WEATHER) is False
    assert q('temperature>"1"', WEATHER) is False
    assert q("status>3", WEATHER) is False
    assert q('temperature!="12.5"', WEATHER) is True  # spec: different types are unequal
    assert q("nan==1", WEATHER) is False
    assert q("nan<1", WEATHER) is False


@pytest.mark.parametrize(("text", "expected"), [
    ("temperature>10;humidity<90", True),
    ("temperature>10;humidity>90", False),
    ("temperature>20|humidity>70", True),
    ("temperature>20|humidity>90", False),
    ("temperature>20;humidity>70|status==\"open\"", True),
    ("temperature>20;(humidity>70|status==\"open\")", False),
    ("(temperature>20|humidity>70);status==\"open\"", True),
    ("pressure|humidity", True),
    ("!pressure;!humidity", False),
    ("((temperature>10))", True),
])
def test_logic_and_precedence(text: str, expected: bool) -> None:
    assert q(text, WEATHER) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("temperature==10..20", True),
    ("temperature==12.5..20", True),
    ("temperature==0..12.5", True),
    ("temperature==13..20", False),
    ("temperature!=13..20", True),
    ("temperature!=10..20", False),
    ('status=="a".."p"', True),
    ('status=="p".."z"', False),
    ("temperature==1,2,12.5", True),
    ("temperature==1,2,3", False),
    ("temperature!=1,2,3", True),
    ("temperature!=1,12.5", False),
    ('status=="closed","open"', True),
    ('status!="closed","open"', False),
    ("day==2026-03-01..2026-04-30", True),
])
def test_ranges_and_value_lists(text: str, expected: bool) -> None:
    assert q(text, WEATHER) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ('status~="^op"', True),
    ('status~="^cl"', False),
    ('status!~="^cl"', True),
    ('status!~="^op"', False),
    ("status~=(?i)^OP(en|ed)$", True),
    ("status~=p;humidity", True),
    ("temperature~=12", False),  # not a string
    ("temperature!~=12", False),
    ('tags~="^bl"', True),
    ('name~="神戸"', True),
    (r'address[city]~="^K\w+e$"', True),
])
def test_regex(text: str, expected: bool) -> None:
    assert q(text, WEATHER) is expected


def test_array_values_match_any_element() -> None:
    assert q('tags=="red"', WEATHER)
    assert q('tags=="green","blue"', WEATHER)
    assert not q('tags=="green"', WEATHER)
    assert q('tags!="green"', WEATHER)
    assert not q('tags!="red"', WEATHER)


def test_sub_attributes_and_meta_members() -> None:
    assert q("temperature.accuracy", WEATHER)
    assert q("temperature.accuracy<1", WEATHER)
    assert not q("temperature.accuracy>1", WEATHER)
    assert not q("temperature.precision", WEATHER)
    assert q('temperature.unitCode=="CEL"', WEATHER)
    assert q("temperature.observedAt", WEATHER)
    assert not q("humidity.observedAt", WEATHER)
    assert q("temperature.observedAt>=2026-11-25T00:00:00Z", WEATHER)
    assert q("temperature.observedAt==2026-11-25T09:00:00+09:00", WEATHER)
    assert not q("temperature.observedAt>2026-11-25T08:59:59+09:00;humidity==0", WEATHER)
    assert q("temperature.observedAt<2026-11-26", WEATHER)
    assert q("temperature.accuracy.observedAt==2026-11-25T00:00:00.000Z", WEATHER)
    assert q("controlledBy.objectType==Device", WEATHER)
    assert q(f"controlledBy.objectType=={DC}Device", WEATHER)


def test_times_with_offsets_compare_as_instants() -> None:
    assert q("startedAt==2026-01-01T00:00:00Z", WEATHER)
    assert q("startedAt>=2026-01-01T09:00:00+09:00", WEATHER)
    assert not q("startedAt>2025-12-31T23:59:59-01:00", WEATHER)
    assert q("startedAt==2025-12-31T23:00:00-01:00..2026-01-01T01:00:00Z", WEATHER)
    assert q("opening==18:30:00+09:00", WEATHER)
    assert q("opening>09:00:00Z", WEATHER)
    assert q('startedAt<"2027"', WEATHER)  # a quoted string compares lexically


def test_trailing_paths_into_compound_values() -> None:
    assert q('address[city]=="Kobe"', WEATHER)
    assert q('address[ward.name]=="Chuo"', WEATHER)
    assert q("address[ward.name]", WEATHER)
    assert not q("address[ward.number]", WEATHER)
    assert not q("!address[city]", WEATHER)
    assert q('address[lines.1]=="Kano-cho"', WEATHER)
    assert not q('address[city.x]=="Kobe"', WEATHER)
    assert q("raw[pm.pm25]<20;raw[pm.pm10]==40", WEATHER)
    assert q("raw[ok]==true", WEATHER)
    assert not q("raw[pm.pm1]", WEATHER)


def test_language_property() -> None:
    assert q('name=="神戸市役所"', WEATHER)
    assert q('name=="Kobe City Hall"', WEATHER)
    assert q('name[ja]=="神戸市役所"', WEATHER)
    assert not q('name[en]=="神戸市役所"', WEATHER)
    assert q('name[*]=="Kobe City Hall"', WEATHER)
    assert q("name[ja]", WEATHER)
    assert not q("name[fr]", WEATHER)
    assert q('name!="大阪"', WEATHER)
    assert not q('name!="神戸市役所"', WEATHER)
    assert q('name[en]!="神戸市役所"', WEATHER)


def test_relationships_compare_objects_with_equality_only() -> None:
    assert q("controlledBy==urn:ngsi-ld:Device:42", WEATHER)
    assert q('controlledBy=="urn:ngsi-ld:Device:42"', WEATHER)
    assert not q("controlledBy==urn:ngsi-ld:Device:43", WEATHER)
    assert q("controlledBy!=urn:ngsi-ld:Device:43", WEATHER)
    assert not q('controlledBy>"urn:a"', WEATHER)
    assert not q('controlledBy~="Device"', WEATHER)
    assert q("feeds==urn:ngsi-ld:Feed:2", WEATHER)
    assert q('feeds=="urn:ngsi-ld:Feed:9","urn:ngsi-ld:Feed:1"', WEATHER)
    assert not q("feeds!=urn:ngsi-ld:Feed:2", WEATHER)
    many = entity(seeAlso={"type": "Relationship", "object": ["urn:a:1", "urn:a:2"]})
    assert q("seeAlso==urn:a:2", many)


def test_vocab_list_and_json_properties() -> None:
    assert q("category==Municipal", WEATHER)
    assert q('category=="Municipal"', WEATHER)
    assert q(f"category=={EX}vocab/Municipal", WEATHER)
    assert not q("category==Federal", WEATHER)
    assert not q("category==cipal", WEATHER)
    hashed = entity(kind={"type": "VocabProperty", "vocab": [EX + "v#Park", EX + "v#Zoo"]})
    assert q("kind==Zoo", hashed)
    assert q("readings==7", WEATHER)
    assert q("readings>10", WEATHER)
    assert not q("readings>11", WEATHER)
    assert q("readings==8..12", WEATHER)
    assert not q("readings!=7", WEATHER)


def test_multi_instance_attribute_matches_when_any_instance_matches() -> None:
    multi = entity(temperature=[prop(20), prop(25, datasetId="urn:ngsi-ld:Dataset:b")])
    assert q("temperature==25", multi)
    assert q("temperature==20", multi)
    assert q("temperature>24", multi)
    assert not q("temperature>30", multi)
    assert q("temperature!=20", multi)  # the dataset-b instance
    assert q("temperature.datasetId==urn:ngsi-ld:Dataset:b", multi)
    assert not q("temperature.datasetId==urn:ngsi-ld:Dataset:c", multi)


def test_missing_attributes_and_odd_entities_never_raise() -> None:
    for text in ("a==1", "a!=1", "a~=x", "a.b.observedAt>2026-01-01", "a[x]==1"):
        assert q(text, entity()) is False
        assert q(text, {"id": "urn:x"}) is False
        assert q(text, entity(a=[{"type": "Property"}, "junk", {"type": "LanguageProperty"}])
                 ) is False
    assert q("!a", {"id": "urn:x"}) is True


# ------------------------------------------------------------------------- syntax errors

@pytest.mark.parametrize(("text", "position", "expected"), [
    ("a==", 3, "expected a value"),
    ("(a==1", 5, "')'"),
    ("a==1)", 4, "unbalanced ')'"),
    ("a=1", 1, "an operator"),
    ("a==1;", 5, "an attribute name"),
    ("|a", 0, "an attribute name"),
    ("a;;b", 2, "an attribute name"),
    ("1abc", 0, "an attribute name"),
    ("a b", 2, "';', '|'"),
    ('a=="unterminated', 3, "unterminated quoted string"),
    ("!a==1", 2, "cannot be followed by an operator"),
    ("!(a)", 1, "an attribute name after '!'"),
    ("a>true", 2, "needs a number"),
    ("a>1,2", 3, "value list"),
    ("a>1..2", 2, "range"),
    ("a==1..", 6, "upper bound"),
    ("a==1..\"x\"", 3, "different types"),
    ("a==1,2..3", 3, "range cannot be part of a value list"),
    ("a~=(", 3, "invalid regular expression"),
    ("a~=", 3, "regular expression"),
    ("a==2026-02-30", 3, "invalid date"),
    ("a==2026-01-01T25:00:00Z", 3, "invalid date-time"),
    ("a==#x", 3, "invalid value"),
    ("a.observedAt.b", 12, "must end the attribute path"),
    ("a.unitCode[x]", 10, "cannot have a trailing path"),
    ("a[", 2, "member name"),
    ("a[b", 3, "']'"),
    ("a{b}==1", 1, "linked-entity"),
    ("a.", 2, "sub-attribute"),
])
def test_syntax_errors_say_where_and_what(text: str, position: int, expected: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_q(text)
    detail = info.value.detail
    assert f"position {position}" in detail, detail
    assert expected in detail, detail


def test_empty_query_and_long_patterns_and_deep_nesting_are_rejected() -> None:
    for text in ("", "   "):
        with pytest.raises(BadRequestData, match="empty"):
            parse_q(text)
    with pytest.raises(BadRequestData, match="longer than 256"):
        parse_q('a~="' + "x" * 257 + '"')
    parse_q('a~="' + "x" * 256 + '"')
    with pytest.raises(BadRequestData, match="nested deeper"):
        parse_q("(" * 100 + "a" + ")" * 100)
    with pytest.raises(BadRequestData):
        parse_q("a==" + "9" * 10000 + "x")
    node = parse_q("a==" + "9" * 10000)  # bigger than int() parses from text: still a number
    assert isinstance(node, Comparison) and isinstance(node.value, Literal)
    assert node.value.kind == "number"


# ------------------------------------------------------------------------------ fuzzing

_ALPHABET = st.sampled_from([*list('ab.[]()!=<>~;|,"\\ 0129-:TZ+*{}#e?'), "神", "..", "=="])


def _check_never_crashes(text: str) -> None:
    try:
        node = parse_q(text)
    except BadRequestData as exc:
        assert "could not be parsed" not in exc.detail, exc.detail  # the safety net stayed idle
        assert re.search(r"position \d+|empty", exc.detail), exc.detail
        return
    assert isinstance(node, QNode)
    expanded = expand_q(node, expand)
    q_matches(expanded, WEATHER)
    attribute_iris(expanded)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_fuzz_arbitrary_text_only_raises_bad_request(text: str) -> None:
    _check_never_crashes(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(_ALPHABET, max_size=25).map("".join))
def test_fuzz_grammar_shaped_text_only_raises_bad_request(text: str) -> None:
    _check_never_crashes(text)
