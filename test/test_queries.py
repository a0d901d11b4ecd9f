import pytest

from partclipseg.defaults import MAX_QUERIES, MAX_QUERY_CHARS
from partclipseg.queries import PartQuery, QueryError, Vocabulary, parse_queries, parse_query


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
