import torch

from partclipseg.model import tokenize
from partclipseg.prompt_plan import Channel, PromptPlan
from partclipseg.queries import parse_queries


def test_partclipseg_plan_rows_and_channels():
    queries = parse_queries("pot/handle; knife/blade; handle; mug/handle")
    plan = PromptPlan.build(queries, part_model=True)
    # parts (blade, handle) then objects (knife, mug, pot) then background: K = 6
    assert plan.prompts == ("blade", "handle", "knife", "mug", "pot")
    assert plan.num_prompts == 6
    # main head: bare part "handle" (row 1), the 3 objects (rows 2..4), background (row 5)
    assert plan.head_rows == (1, 2, 3, 4, 5)
    assert plan.pair_parts == (1, 0, 1)
    assert plan.pair_objects == (2, 0, 1)
    assert plan.query_channels == (Channel("pair", 0), Channel("pair", 1), Channel("main", 0), Channel("pair", 2))
    assert plan.query_objects == (2, 0, None, 1)
    assert plan.object_channels == (Channel("main", 1), Channel("main", 2), Channel("main", 3), Channel("main", 4))
    assert plan.background_channel == Channel("pair", 3)
    assert PromptPlan.build(queries, part_model=True, all_rows=True).head_rows == tuple(range(6))


def test_clipseg_plan_uses_phrases():
    plan = PromptPlan.build(parse_queries("pot's handle; handle; knife blade"), part_model=False)
    assert plan.prompts == ("pot handle", "handle", "knife blade")
    assert plan.head_rows == (0, 1, 2)
    assert plan.background_channel is None and not plan.background


def test_object_half_index_quirk(tiny_model):
    """The text pair of an object-specific class uses cond[o] WITHOUT the part offset (docs/model.md,
    "Object-part pairs")."""
    model = tiny_model
    plan = PromptPlan.build(parse_queries("pot/handle; knife/blade"), part_model=True)
    # parts: blade(0) handle(1); objects: knife(0) pot(1); P = 2
    with torch.no_grad():
        cond_text = model.encode_text(tokenize(list(plan.prompts), model.config.context_length))
        cond = torch.cat([cond_text, model.non_object_embedding])
        tensors = model.condition(cond_text, plan)
        decoder = model.decoder
        # pot/handle: object index 1 -> cond[1] = the *part* "handle", not cond[2 + 1] = "pot"
        quirk = torch.stack([torch.cat([cond[1], cond[1]]), torch.cat([cond[0], cond[0]]), torch.cat([cond[4], cond[4]])])
        expected = decoder.cond_film_mul(decoder.reduce_cond_embed(quirk))
        intended = decoder.cond_film_mul(decoder.reduce_cond_embed(torch.cat([cond[3], cond[1]])[None]))
    torch.testing.assert_close(tensors.pair_film_mul, expected)
    assert not torch.allclose(tensors.pair_film_mul[0], intended[0])
    # decoder features do use the offset: [part row, P + object row]; background row doubled
    assert tensors.pair_index.tolist() == [[1, 3], [0, 2], [4, 4]]


def test_a_plan_anchored_to_the_training_classes_keeps_their_prompts_and_indices():
    trained = parse_queries("pot/handle; pot/lid; knife/blade; knife/handle; mug/handle")
    full = PromptPlan.build(trained, part_model=True)
    subset = PromptPlan.build(parse_queries("mug/handle"), part_model=True, anchor=trained)
    assert subset.prompts == full.prompts == ("blade", "handle", "lid", "knife", "mug", "pot")
    # mug/handle: part 1, object 1, as in training (unanchored, the vocabulary is just (handle, mug): object 0)
    assert (subset.pair_parts, subset.pair_objects) == ((1,), (1,))
    assert PromptPlan.build(parse_queries("mug/handle"), part_model=True).pair_objects == (0,)
    assert len(subset.object_channels) == 3 + 1  # Pred-All weighs every trained object, then the background
    # a query outside the training vocabulary joins it (sorted, as the official code builds it)
    extended = PromptPlan.build(parse_queries("cup/handle"), part_model=True, anchor=trained)
    assert extended.prompts == ("blade", "handle", "lid", "cup", "knife", "mug", "pot")
