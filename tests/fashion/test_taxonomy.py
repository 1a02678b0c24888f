from __future__ import annotations

import pytest

from visionlake.errors import BadInput
from visionlake.fashion.taxonomy import load_taxonomy


def test_default_taxonomy_has_the_issue_vocabulary():
    tax = load_taxonomy()
    for attr in ("category", "colour", "pattern", "silhouette", "length", "neckline", "sleeve", "material"):
        assert attr in tax.attributes
    assert {"dress", "jeans", "blazer", "jumpsuit"} <= set(tax.attribute("category").values)
    assert {"mini", "midi", "maxi", "cropped"} <= set(tax.attribute("length").values)
    prompts = tax.attribute("pattern").prompts_for("stripes")
    assert len(prompts) >= 4 and all("stripe" in p for p in prompts)


def test_public_dataset_names_map_to_ours():
    tax = load_taxonomy()
    assert tax.from_streetstyle("major_color", "Gray") == ("colour", "grey")
    assert tax.from_streetstyle("clothing_pattern", "Plaid") == ("pattern", "checks")
    assert tax.from_streetstyle("wearing_hat", "Yes") == ("category", "hat")
    assert tax.from_streetstyle("wearing_hat", "No") is None
    assert tax.from_streetstyle("clothing_category", "Unknown thing") is None
    assert ("category", "dress") in tax.from_fashionpedia("Dress")
    facts = tax.streetstyle_row({"sleeve_length": "Long sleeve", "neckline_shape": "V-shape", "major_color": ""})
    assert sorted(facts) == [("neckline", "v-neck"), ("sleeve", "long")]


def test_user_yaml_extends_and_drops(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text(
        "attributes:\n"
        "  category:\n"
        "    values:\n"
        "      kaftan: {prompts: [a kaftan]}\n"
        "      dress: {drop: true}\n"
        "  material: {drop: true}\n"
        "  occasion:\n"
        "    templates: ['an outfit for {}.']\n"
        "    values: {office: [the office], beach: [the beach]}\n"
    )
    tax = load_taxonomy(user)
    assert "kaftan" in tax.attribute("category").values
    assert "dress" not in tax.attribute("category").values
    assert "material" not in tax.attributes
    assert tax.attribute("occasion").prompts_for("beach") == ["an outfit for the beach."]
    assert "pattern" in tax.attributes  # untouched defaults stay


@pytest.mark.parametrize("text, words", [
    ("attributes: [1, 2]", "must be a mapping"),
    ("attributes:\n  x:\n    values: {a: [a]}\n", "at least two values"),
    ("attributes:\n  x:\n    templates: ['no slot']\n    values: {a: [a], b: [b]}\n", "exactly one"),
    ("attributes: {x: [", "not valid YAML"),
])
def test_bad_taxonomy_files_are_rejected_clearly(tmp_path, text, words):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(BadInput, match=words):
        load_taxonomy(p, extend=False)


def test_missing_taxonomy_file(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_taxonomy(tmp_path / "nope.yaml")
