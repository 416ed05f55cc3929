from __future__ import annotations

from graphstore.sources.text import normalize_query, terms, tokenize


def test_near_identical_queries_share_one_form() -> None:
    forms = {normalize_query(q) for q in ("Racing games", "racing game", "games for racing")}
    assert forms == {"game race"}


def test_model_numbers_are_kept_and_stop_words_dropped() -> None:
    assert normalize_query("The Xbox 360 controller") == "360 control xbox"
    assert normalize_query("the of and") == ""


def test_tokenize_folds_accents_and_case() -> None:
    assert tokenize("Pokémon RUBY") == ["pokemon", "ruby"]


def test_terms_are_stemmed_in_order() -> None:
    assert terms("running shoes") == ["run", "shoe"]
