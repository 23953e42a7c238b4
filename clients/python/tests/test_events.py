"""The generated dataclasses against the catalogue's examples (tests/examples.json, generated too)."""

import json
from pathlib import Path

import pytest

import ccevents
from ccevents import events

EXAMPLES = json.loads((Path(__file__).parent / "examples.json").read_text())


def test_every_event_type_of_the_catalogue_has_a_dataclass():
    assert list(events.EVENT_TYPES) == list(EXAMPLES)
    assert len(events.PAYLOAD_TYPES) == len(EXAMPLES)


@pytest.mark.parametrize("event_type", list(EXAMPLES))
def test_each_example_decodes_to_its_type_and_encodes_back_unchanged(event_type):
    data = EXAMPLES[event_type]
    p = ccevents.decode(data)
    assert type(p) is events.PAYLOAD_TYPES[event_type]
    assert p.event == event_type
    assert p.sequence == data["sequence"]
    assert p.to_dict() == data


def test_nested_values_are_dataclasses_and_enums_list_their_values():
    sync = ccevents.decode(EXAMPLES["recipient.sync"])
    assert isinstance(sync, ccevents.RecipientSync)
    assert isinstance(sync.active_sessions[0], ccevents.ActiveSession)
    assert sync.active_sessions[0].direction in ccevents.DIRECTION_VALUES
    assert sync.state in ccevents.STATE_VALUES
    assert "logged_out" in ccevents.STATE_VALUES


def test_an_unknown_event_type_and_a_missing_member_say_what_is_wrong():
    with pytest.raises(ccevents.UnknownEventError, match="queue.teleport"):
        ccevents.decode({"event": "queue.teleport"})
    data = dict(EXAMPLES["queue.join"])
    del data["position"]
    with pytest.raises(ccevents.DecodeError, match="'position' is missing"):
        ccevents.decode(data)


def test_members_a_newer_gateway_adds_are_ignored():
    data = dict(EXAMPLES["queue.join"], some_future_field=1)
    assert ccevents.decode(data).position == EXAMPLES["queue.join"]["position"]
