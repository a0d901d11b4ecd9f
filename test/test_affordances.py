"""The affordance vocabulary and affordance requests in the one query parser."""
import pytest

from partclipseg.affordances import AffordanceError, load_affordances, parse_affordances
from partclipseg.queries import PartQuery, QueryError, parse_queries

VOCAB = load_affordances()


def test_built_in_vocabulary():
    assert {"grasp", "avoid", "pour", "open", "press"} <= set(VOCAB.names)
    assert VOCAB.affordance_of("handle", "pot") == "grasp"
    assert VOCAB.affordance_of("handle") == "grasp"
    assert VOCAB.affordance_of("blade", "knife") == "avoid"
    assert VOCAB.affordance_of("neck", "bottle") == "grasp"
    assert VOCAB.affordance_of("neck", "cat") is None  # only the bottle's neck
    assert VOCAB.affordance_of("head", "cat") is None
    assert load_affordances() is VOCAB  # read once


@pytest.mark.parametrize(
    "text, expected",
    [
        ("grasp:knife", [("knife/handle", "grasp")]),
        ("GRASP : Knife", [("knife/handle", "grasp")]),
        ("grasp:coffee mug", [("coffee mug/handle", "grasp")]),
        ("grasp:bottle", [("bottle/neck", "grasp")]),
        ("grasp:door", [("door/handle", "grasp"), ("door/knob", "grasp")]),
        ("open:bottle", [("bottle/cap", "open")]),
        ("open:pot", [("pot/lid", "open")]),
        ("avoid:knife", [("knife/blade", "avoid"), ("knife/tip", "avoid")]),
        ("grasp", [("handle", "grasp"), ("knob", "grasp"), ("grip", "grasp")]),
        ("grasp:", [("handle", "grasp"), ("knob", "grasp"), ("grip", "grasp")]),
        ("pot/handle; cat/head", [("pot/handle", "grasp"), ("cat/head", None)]),
        # a request and the plain query it resolves to are one query
        ("knife handle; grasp:knife; avoid:knife", [("knife/handle", "grasp"), ("knife/blade", "avoid"),
                                                    ("knife/tip", "avoid")]),
    ],
)
def test_affordance_requests(text, expected):
    got = parse_queries(text, affordances=VOCAB)
    assert [(q.name, q.affordance) for q in got] == expected


def test_queries_compare_by_part_and_object_only():
    assert PartQuery("handle", "pot", "grasp") == PartQuery("handle", "pot")
    assert len({PartQuery("handle", "pot", "grasp"), PartQuery("handle", "pot")}) == 1
    # PartQuery objects given directly get their affordance filled in, unless they carry one
    got = parse_queries([PartQuery("lid", "pot"), PartQuery("spout", "kettle", "avoid")], affordances=VOCAB)
    assert [q.affordance for q in got] == ["open", "avoid"]
    # without a vocabulary nothing changes: no affordance, and ':' is rejected with a hint
    assert parse_queries("pot/handle")[0].affordance is None
    with pytest.raises(QueryError, match="affordance vocabulary"):
        parse_queries("grasp:knife")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("fly:knife", "unknown affordance 'fly'"),
        ("grasp:knife/handle", "characters"),
        ("grasp:kn<ife", "characters"),
        (":knife", "unknown affordance ''"),
        ("grasp:" + "k" * 80, "limit"),
    ],
)
def test_bad_requests(text, reason):
    with pytest.raises(QueryError, match=reason):
        parse_queries(text, affordances=VOCAB)


def test_request_without_parts_to_ask_for():
    vocab = parse_affordances({"parts": {"pot/handle": "grasp", "lid": "open"}, "requests": {}})
    assert [q.name for q in parse_queries("grasp:pot", affordances=vocab)] == ["pot/handle"]
    with pytest.raises(QueryError, match="names no parts to ask for 'grasp' of 'knife'"):
        parse_queries("grasp:knife", affordances=vocab)


def test_file_round_trip_and_normalisation(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("parts:\n  Handle: grasp\n  'bowl / rim': grasp\n  Knife Blade: avoid\n"
                    "requests:\n  grasp: handle\n")
    vocab = load_affordances(path)
    assert vocab.parts == {"handle": "grasp", "bowl/rim": "grasp", "knife/blade": "avoid"}
    assert vocab.requests == {"grasp": ("handle",)}
    assert [q.name for q in parse_queries("grasp:bowl", affordances=vocab)] == ["bowl/rim"]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("- handle\n", "expected a mapping with 'parts'"),
        ("parts: {handle: grasp}\nextra: 1\n", "unknown key"),
        ("parts: {handle: Grasp Now}\n", "one lower-case word"),
        ("parts: {handle: grasp, Handle: avoid}\n", "listed twice"),
        ("parts: {a/b/c: grasp}\n", "one '/'"),
        ("parts: {handle: grasp}\nrequests: {grasp: [pot/handle]}\n", "bare part words"),
        ("parts: {handle: grasp}\nrequests: {grasp: []}\n", "non-empty list"),
        ("parts: {handle: grasp}\nrequests: [grasp]\n", "'requests' must map"),
        ("parts: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_files(tmp_path, text, reason):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(AffordanceError, match=reason):
        load_affordances(path)


def test_missing_file(tmp_path):
    with pytest.raises(AffordanceError, match="cannot read"):
        load_affordances(tmp_path / "nope.yaml")
