import re

import pytest

from partclipseg.defaults import MAX_QUERIES, MAX_QUERY_CHARS
from partclipseg.queries import PartQuery, QueryError, Vocabulary, parse_objects, parse_queries, parse_query


@pytest.mark.parametrize(
    "text, obj, part",
    [
        ("pot/handle", "pot", "handle"),
        ("  Pot / Handle ", "pot", "handle"),
        ("pot's handle", "pot", "handle"),
        ("mug\u2019s handle", "mug", "handle"),
        ("handle of the pot", "pot", "handle"),
        ("handle of a pot", "pot", "handle"),
        ("handle of pot", "pot", "handle"),
        ("knife handle", "knife", "handle"),
        ("KNIFE   Handle", "knife", "handle"),
        ("chest of drawers's apron", "chest of drawers", "apron"),
        ("handle of the chest of drawers", "chest of drawers", "handle"),
        ("car/license plate", "car", "license plate"),
        ("coffee mug handle", "coffee mug", "handle"),
        ("handle", None, "handle"),
        ("Handle", None, "handle"),
        ("t-shirt/sleeve", "t-shirt", "sleeve"),
    ],
)
def test_grammar(text, obj, part):
    assert parse_query(text) == PartQuery(part=part, object=obj)


def test_names():
    assert parse_query("pot's handle").name == "pot/handle"
    assert parse_query("pot's handle").phrase == "pot handle"
    assert parse_query("handle").name == "handle"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("/handle", "object is empty"),
        ("pot/", "part is empty"),
        ("a/b/c", "one '/'"),
        ("pot/han<dle", "characters"),
        ("grasp:knife", "characters"),
        ("x" * (MAX_QUERY_CHARS + 1), "limit"),
        ("'s handle", "object is empty"),
    ],
)
def test_bad_query(text, reason):
    with pytest.raises(QueryError, match=reason):
        parse_query(text)


def test_several_and_dedup():
    got = parse_queries("pot/handle; knife handle, pot's handle;;")
    assert [q.name for q in got] == ["pot/handle", "knife/handle"]
    got = parse_queries(["pot/handle", "mug handle; handle"])
    assert [q.name for q in got] == ["pot/handle", "mug/handle", "handle"]


def test_limits():
    with pytest.raises(QueryError, match="no query"):
        parse_queries(" ; , ")
    with pytest.raises(QueryError, match="at most"):
        parse_queries([f"o{i}/p" for i in range(MAX_QUERIES + 1)])
    with pytest.raises(QueryError, match="characters long"):
        parse_queries("a/b;" * 1000)
    with pytest.raises(QueryError, match="string"):
        parse_queries([3])
    assert len(parse_queries([f"o{i}/p" for i in range(MAX_QUERIES)])) == MAX_QUERIES


def test_vocabulary_order_is_official():
    # sorted unique parts, then sorted unique objects (Python string order)
    queries = parse_queries("pot/lid; knife/blade; pot/handle; mug/handle; handle; blade")
    vocab = Vocabulary.from_queries(queries)
    assert vocab.parts == ("blade", "handle", "lid")
    assert vocab.objects == ("knife", "mug", "pot")
    assert vocab.prompts == ("blade", "handle", "lid", "knife", "mug", "pot")
    cased = Vocabulary.from_queries([PartQuery("head", "Komodo dragon"), PartQuery("body", "American alligator"),
                                     PartQuery("tail", "ape")])
    assert cased.objects == ("American alligator", "Komodo dragon", "ape")


@pytest.mark.parametrize("text, reason", [
    ("handle of the", "the object is empty"),
    ("handle of", "the object is empty"),
    ("of the pot", "the part is empty"),
    ("pot's", "the part is empty"),
    ("pot\x00handle", "control character '\\x00' at position 3"),
    ("pot\x1bhandle", "control character '\\x1b'"),
    ("pot/handle; knife\x07", "control character '\\x07'"),
])
def test_broken_forms_are_refused_with_the_reason(text, reason):
    with pytest.raises(QueryError, match=re.escape(reason)):
        parse_queries(text)


def test_a_nul_is_refused_and_says_what_ros_would_make_of_it():
    """ROS strings end at the first NUL: over a topic 'pot\\x00handle' arrives as 'pot'. Where the parser sees the
    whole string (library, CLI, node parameters set in-process) it refuses it instead of segmenting 'pot'."""
    with pytest.raises(QueryError, match="would arrive cut short as 'pot'"):
        parse_queries("pot\x00handle")


def test_articles_and_possessives():
    assert [q.name for q in parse_queries("the handle of the pot; a knife's handle; handle of a mug")] == [
        "pot/handle", "knife/handle", "mug/handle"]
    assert parse_queries("o'shea's cup")[0] == PartQuery("cup", "o'shea")


def test_objects_are_parsed_like_the_node_parameter():
    assert parse_objects("pot; knife, Pot") == ["pot", "knife"]
    assert parse_objects(["pot", "knife; mug"]) == ["pot", "knife", "mug"]
    assert parse_objects(" ; ") == []
    with pytest.raises(QueryError):
        parse_objects("pot\x00")
