"""The connector's rules, alone: hide what is not bookable, restore only what it hid"""

from api.connectors.plan import Move, Step, Wanted, plan


def moves(wanted, online, hidden=None):
    result = plan(wanted, online, hidden or {})
    return [(s.move, s.external_id) for s in result.steps], result


def test_a_treatment_that_is_not_bookable_has_its_service_switched_off():
    assert moves([Wanted("exosomes", "V1", bookable=False)], {"V1": True})[0] == [(Move.HIDE, "V1")]


def test_a_bookable_treatment_with_its_service_on_is_left_alone():
    steps, result = moves([Wanted("botox", "V1", bookable=True)], {"V1": True})
    assert steps == [] and result.in_step == ["botox"]


def test_a_service_staff_switched_off_is_never_switched_on():
    steps, result = moves([Wanted("botox", "V1", bookable=True)], {"V1": False})
    assert steps == [] and result.in_step == ["botox"]


def test_a_service_the_connector_hid_is_restored_when_bookable_again():
    assert moves([Wanted("botox", "V1", True)], {"V1": False}, {"V1": "botox"})[0] == [(Move.RESTORE, "V1")]


def test_a_hidden_service_switched_back_on_while_not_bookable_is_drift():
    steps, _ = moves([Wanted("exosomes", "V1", False)], {"V1": True}, {"V1": "exosomes"})
    assert steps == [(Move.CORRECT_DRIFT, "V1")]


def test_a_hidden_service_already_on_again_when_bookable_is_only_forgotten():
    assert moves([Wanted("botox", "V1", True)], {"V1": True}, {"V1": "botox"})[0] == [(Move.FORGET, "V1")]


def test_a_not_bookable_treatment_whose_service_is_off_needs_nothing():
    steps, result = moves([Wanted("exosomes", "V1", False)], {"V1": False}, {"V1": "exosomes"})
    assert steps == [] and result.in_step == ["exosomes"]


def test_unmapped_treatments_and_mappings_to_nothing_are_reported_and_left_alone():
    steps, result = moves([Wanted("a", None, False), Wanted("b", "GONE", False)], {})
    assert steps == []
    assert result.unmapped == ["a"] and result.missing == [("b", "GONE")]


def test_a_service_hidden_for_a_treatment_whose_mapping_was_removed_stays_off_and_is_reported():
    steps, result = moves([Wanted("exosomes", None, True)], {"OLD": False}, {"OLD": "exosomes"})
    assert steps == []
    assert result.orphaned == [("exosomes", "OLD")] and result.unmapped == ["exosomes"]


def test_steps_name_the_treatment():
    result = plan([Wanted("exosomes", "V1", False)], {"V1": True}, {})
    assert result.steps == [Step(Move.HIDE, "exosomes", "V1")]
