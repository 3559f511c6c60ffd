"""The instrument registry: published wording, ranges and bands, scoring, and GET /v1/instruments."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.instruments.registry import GAD2, GAD7, INSTRUMENTS, PHQ9, SUDS, Band, Instrument, Item, get_instrument

# (total, band) at both sides of every published cut-off.
GAD7_BOUNDARIES = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
                   (15, "severe"), (19, "severe"), (20, "severe"), (21, "severe")]
PHQ9_BOUNDARIES = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
                   (15, "moderately_severe"), (19, "moderately_severe"), (20, "severe"), (27, "severe")]


def vector_with_total(instrument: Instrument, total: int) -> list[int]:
    items = []
    for _ in instrument.items:
        value = min(instrument.item_max, total - sum(items))
        items.append(value)
    assert sum(items) == total
    return items


@pytest.mark.parametrize(("total", "band"), GAD7_BOUNDARIES)
def test_gad7_cut_offs(total, band):
    assert GAD7.score(vector_with_total(GAD7, total)).severity == band


@pytest.mark.parametrize(("total", "band"), PHQ9_BOUNDARIES)
def test_phq9_cut_offs(total, band):
    assert PHQ9.score(vector_with_total(PHQ9, total)).severity == band


def test_published_structure():
    assert [(i.code, i.item_count, i.item_min, i.item_max, i.total_min, i.total_max) for i in INSTRUMENTS.values()] == [
        ("gad7", 7, 0, 3, 0, 21), ("phq9", 9, 0, 3, 0, 27), ("gad2", 2, 0, 3, 0, 6), ("suds", 1, 0, 100, 0, 100)]
    assert [(b.label, b.min, b.max) for b in GAD7.bands] == [
        ("minimal", 0, 4), ("mild", 5, 9), ("moderate", 10, 14), ("severe", 15, 21)]
    assert [(b.label, b.min, b.max) for b in PHQ9.bands] == [
        ("minimal", 0, 4), ("mild", 5, 9), ("moderate", 10, 14), ("moderately_severe", 15, 19), ("severe", 20, 27)]
    assert GAD7.items[0].text == "Feeling nervous, anxious, or on edge"
    assert GAD7.items[6].text.startswith("Feeling afraid")
    assert GAD2.items == GAD7.items[:2]
    assert "better off dead" in PHQ9.items[8].text and PHQ9.urgent_items == (8,)
    assert [(o.value, o.label) for o in GAD7.answer_options] == [
        (0, "Not at all"), (1, "Several days"), (2, "More than half the days"), (3, "Nearly every day")]
    assert (GAD7.loinc_panel, GAD7.loinc_total, PHQ9.loinc_panel, PHQ9.loinc_total, PHQ9.items[8].loinc) == (
        "69737-5", "70274-6", "44249-1", "44261-6", "44260-8")
    assert (GAD7.clinically_meaningful_change, PHQ9.clinically_meaningful_change) == (4, 5)
    assert GAD7.remission_below == PHQ9.remission_below == 5
    # Response and remission are judged from a mild baseline, and only for these two (issue 16).
    assert GAD7.response_baseline_min == PHQ9.response_baseline_min == 5
    assert [code for code, spec in INSTRUMENTS.items() if spec.response_baseline_min is not None] == ["gad7", "phq9"]
    assert get_instrument("gad7") is GAD7 and get_instrument("nope") is None


@pytest.mark.parametrize(("items", "severity"), [([1, 1], "negative_screen"), ([2, 0], "negative_screen"),
                                                 ([2, 1], "positive_screen"), ([3, 3], "positive_screen")])
def test_gad2_screens_positive_at_three(items, severity):
    assert GAD2.positive_screen_threshold == 3
    assert GAD2.score(items).severity == severity


def test_suds_has_no_bands():
    assert SUDS.score([73]).severity is None
    assert SUDS.score([73]).total == 73


def test_phq9_item_9_above_zero_is_urgent_whatever_the_total():
    assert PHQ9.score([0] * 8 + [1]).urgent_items == (8,)
    assert PHQ9.score([0] * 8 + [1]).severity == "minimal"
    assert PHQ9.score([3] * 8 + [0]).urgent_items == ()
    assert GAD7.score([3] * 7).urgent_items == ()


@pytest.mark.parametrize(("instrument", "items", "problem"), [
    (GAD7, [1] * 6, "GAD-7 has 7 items, got 6"),
    (GAD7, [1] * 8, "GAD-7 has 7 items, got 8"),
    (GAD7, [1, 1, 4, 1, 1, 1, 1], "GAD-7 item 3 must be between 0 and 3"),
    (PHQ9, [0] * 8 + [-1], "PHQ-9 item 9 must be between 0 and 3"),
    (SUDS, [101], "SUDS item 1 must be between 0 and 100"),
])
def test_invalid_vectors_are_refused(instrument, items, problem):
    assert [msg for _, msg in instrument.item_problems(items)] == [problem]
    with pytest.raises(ValueError, match=problem):
        instrument.score(items)


def test_inconsistent_instrument_data_is_refused_at_definition():
    with pytest.raises(ValueError, match="contiguous"):
        Instrument(code="x", name="X", description="", prompt="", items=(Item("a"), Item("b")), item_min=0,
                   item_max=3, answer_options=(), citation="", bands=(Band("low", 0, 2), Band("high", 4, 6)))
    with pytest.raises(ValueError, match="end at the maximum"):
        Instrument(code="x", name="X", description="", prompt="", items=(Item("a"),), item_min=0, item_max=3,
                   answer_options=(), citation="", bands=(Band("low", 0, 2),))
    with pytest.raises(ValueError, match="urgent item"):
        Instrument(code="x", name="X", description="", prompt="", items=(Item("a"),), item_min=0, item_max=3,
                   answer_options=(), citation="", urgent_items=(1,))


@st.composite
def valid_answers(draw):
    instrument = draw(st.sampled_from(list(INSTRUMENTS.values())))
    items = draw(st.lists(st.integers(instrument.item_min, instrument.item_max),
                          min_size=instrument.item_count, max_size=instrument.item_count))
    return instrument, items


@given(valid_answers())
def test_every_valid_vector_scores_to_its_sum_inside_its_band(answers):
    instrument, items = answers
    scored = instrument.score(items)
    assert scored.total == sum(items)
    assert instrument.total_min <= scored.total <= instrument.total_max
    if instrument.bands:
        band = next(b for b in instrument.bands if b.label == scored.severity)
        assert band.min <= scored.total <= band.max
    else:
        assert scored.severity is None
    if instrument.positive_screen_threshold is not None:
        assert (scored.severity == "positive_screen") == (scored.total >= instrument.positive_screen_threshold)


# --- HTTP ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["admin", "clinician", "patient_user", "clinician_b"])
async def test_any_authenticated_caller_lists_instruments(client, world, actor):
    response = await client.get("/v1/instruments", headers=world.actor(actor).headers)
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [i["code"] for i in body["items"]] == ["gad7", "phq9", "gad2", "suds"]


async def test_instrument_listing_carries_wording_ranges_and_bands(client, world):
    response = await client.get("/v1/instruments/phq9", headers=world.patient_user.headers)
    assert response.status_code == 200
    phq9 = response.json()
    assert (phq9["item_min"], phq9["item_max"], phq9["total_min"], phq9["total_max"]) == (0, 3, 0, 27)
    assert len(phq9["items"]) == 9
    assert phq9["items"][8] == {"index": 8, "text": PHQ9.items[8].text, "loinc": "44260-8", "urgent": True}
    assert phq9["bands"][3] == {"label": "moderately_severe", "min": 15, "max": 19}
    assert phq9["prompt"].startswith("Over the last 2 weeks")
    assert phq9["loinc_total"] == "44261-6" and phq9["clinically_meaningful_change"] == 5
    gad2 = (await client.get("/v1/instruments/gad2", headers=world.patient_user.headers)).json()
    assert gad2["positive_screen_threshold"] == 3
    suds = (await client.get("/v1/instruments/suds", headers=world.patient_user.headers)).json()
    assert suds["bands"] == [] and suds["item_max"] == 100


async def test_unknown_instrument_is_404(client, world):
    response = await client.get("/v1/instruments/bdi", headers=world.clinician.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_instruments_need_a_token(client):
    assert (await client.get("/v1/instruments")).status_code == 401
    assert (await client.get("/v1/instruments/gad7")).status_code == 401
