"""The ops state machine (ops.conditions), directly: persistence before opening and clearing,
one message per incident, reminders, recovery, flapping, unknown observations."""

from ops.conditions import (
    ConditionState,
    Observation,
    OpsCondition,
    OpsEvent,
    OpsEventKind,
    Persistence,
    condition_step,
    conditions_step,
)

POLLING = OpsCondition.POLLING_STALLED
TWO = Persistence(open_checks=2, clear_checks=2)


def run(holdings, *, persistence=TWO, reminder_sec=0.0, every_ms=15_000, state=None):
    """Feed one observation per check (True/False/None), 15 s apart; the events, with the index
    of the check that emitted each, and the last state."""
    state = state or ConditionState()
    events = []
    for index, holding in enumerate(holdings):
        state, event = condition_step(
            state,
            Observation(POLLING, holding, f"check {index}"),
            now_ms=1_000_000 + index * every_ms,
            persistence=persistence,
            reminder_sec=reminder_sec,
        )
        if event is not None:
            events.append((index, event))
    return events, state


def kinds(events):
    return [(index, event.kind) for index, event in events]


def test_a_condition_opens_only_after_holding_for_the_required_checks_and_once():
    events, state = run([False, True, True, True, True, True])
    assert kinds(events) == [(2, OpsEventKind.OPENED)]
    ((_, opened),) = events
    assert state.open
    # the incident started at the first check that saw it, not when it was confirmed
    assert opened.opened_at_ms == 1_000_000 + 15_000
    assert opened.detail == "check 2"


def test_recovery_after_the_required_clear_checks_with_the_incidents_key():
    events, state = run([True, True, True, False, False, False])
    assert kinds(events) == [(1, OpsEventKind.OPENED), (4, OpsEventKind.RECOVERED)]
    opened, recovered = events[0][1], events[1][1]
    assert recovered.recovered and not opened.recovered
    assert recovered.dedup_key == opened.dedup_key  # one incident, one key
    assert recovered.text == "check 4 (after 60 s)"  # opened at check 0, recovered at check 4
    assert not state.open and state.streak == 0


def test_flapping_never_opens_and_an_open_condition_that_flaps_never_recovers():
    events, _ = run([True, False] * 10)
    assert events == []
    events, state = run([True, True] + [False, True] * 10)
    assert kinds(events) == [(1, OpsEventKind.OPENED)]
    assert state.open


def test_a_minimum_duration_holds_the_opening_back_until_it_has_passed():
    minute = Persistence(open_checks=1, open_min_sec=60, clear_checks=1)
    events, _ = run([True] * 6, persistence=minute)  # checks at 0, 15, ..., 75 s
    assert kinds(events) == [(4, OpsEventKind.OPENED)]  # 60 s after the first check that saw it
    # a back-off that ends before the minute never opens
    events, _ = run([True, True, True, False, True], persistence=minute)
    assert events == []


def test_reminders_while_open_at_their_interval_and_none_without_one():
    events, _ = run([True] * 12, reminder_sec=60)  # opens at check 1 (15 s)
    assert kinds(events) == [
        (1, OpsEventKind.OPENED),
        (5, OpsEventKind.REMINDER),
        (9, OpsEventKind.REMINDER),
    ]
    assert all(event.dedup_key == events[0][1].dedup_key for _, event in events)
    # what a message sink deduplicates on: each reminder its own key, under the incident's
    keys = [event.message_key for _, event in events]
    assert keys[0] == events[0][1].dedup_key and len(set(keys)) == 3
    assert all(key.startswith(keys[0] + ":reminder:") for key in keys[1:])
    assert events[1][1].title.startswith("Ops, still")
    events, _ = run([True] * 12, reminder_sec=0)
    assert kinds(events) == [(1, OpsEventKind.OPENED)]


def test_unknown_changes_nothing_neither_progress_nor_reset():
    events, _ = run([True, None, None, True])
    assert kinds(events) == [(3, OpsEventKind.OPENED)]
    events, state = run([True, True, False, None, False])
    assert kinds(events) == [(1, OpsEventKind.OPENED), (4, OpsEventKind.RECOVERED)]
    events, state = run([None, None])
    assert events == [] and state == ConditionState(detail="")


def test_open_at_once_for_facts_and_a_quiet_spell_before_clearing():
    dead_letters = Persistence(open_checks=1, clear_checks=1, clear_min_sec=60)
    events, _ = run(
        [True, False, True, False, False, False, False, False], persistence=dead_letters
    )
    # opens at the first; a new dead letter at check 2 restarts the quiet spell: 60 s from check 3
    assert kinds(events) == [(0, OpsEventKind.OPENED), (7, OpsEventKind.RECOVERED)]


def test_the_state_survives_its_json_form():
    _, state = run([True, True, False])
    assert ConditionState.from_dict(state.as_dict()) == state
    event = OpsEvent(POLLING, OpsEventKind.OPENED, "beat: no poll dispatch", 5, 3)
    assert OpsEvent.from_dict(event.as_dict()) == event


def test_many_conditions_step_independently_and_new_ones_start_clear():
    persistence = {OpsCondition.DEAD_LETTERS: Persistence(open_checks=1)}
    states, events = conditions_step(
        {},
        [
            Observation(OpsCondition.DEAD_LETTERS, True, "3 batches"),
            Observation(POLLING, True, "beat silent"),
            Observation(OpsCondition.REDIS_UNREACHABLE, None),
        ],
        now_ms=10,
        persistence=persistence,
        reminder_sec=0,
    )
    assert [(e.condition, e.kind) for e in events] == [
        (OpsCondition.DEAD_LETTERS, OpsEventKind.OPENED)
    ]
    assert states[POLLING].streak == 1 and not states[POLLING].open
    assert states[OpsCondition.REDIS_UNREACHABLE] == ConditionState()
    assert events[0].title == "Ops: dead-lettered snapshot batches"
