"""The contact relay on real SQLite: people write about a report without ever seeing each other's
address; only the two people of a conversation read it; a message posted twice is one."""

from __future__ import annotations

import pytest
from domain_world import LAST_SEEN, LAST_SEEN_POINT, LOST_DOG, LOST_DOG_PHOTOS, NOW, dog_photos, models

from search_party.community import accounts, notifications, relay, reports, retention
from search_party.errors import Forbidden, UserError
from search_party.store.db import open_db


@pytest.fixture
def world(tmp_path):
    db = open_db(tmp_path / "sp.db")
    owner = accounts.create_user(db, "owner@example.org")
    helper = accounts.create_user(db, "helper@example.org", display_name="Sam from no. 12")
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)[:1]),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
    return db, owner, helper, report


def test_two_people_write_through_the_relay_without_seeing_addresses(world):
    db, owner, helper, report = world
    conversation = relay.start_conversation(db, helper.id, lost_report_id=report.id)
    assert relay.start_conversation(db, helper.id, lost_report_id=report.id) == conversation
    relay.send_message(db, conversation.id, helper.id, "I think I saw Bella by the canal at 9.")
    relay.send_message(db, conversation.id, owner.id, "Thank you! Which bridge?")
    seen_by_owner = relay.read_messages(db, conversation.id, owner.id)
    assert [(m.sender_label, m.mine) for m in seen_by_owner] == [("Sam from no. 12", False),
                                                                 ("Bella's owner", True)]
    (to_owner,) = notifications.inbox(db, owner.id)
    (to_helper,) = notifications.inbox(db, helper.id)
    texts = " ".join(f"{n.subject} {n.body}" for n in (to_owner, to_helper))
    texts += " ".join(m.sender_label + m.body for m in seen_by_owner)
    assert "@example.org" not in texts  # no address anywhere either side sees
    assert to_owner.conversation_id == conversation.id and "Bella" in to_owner.subject
    assert [c.id for c in relay.conversations_for(db, owner.id)] == [conversation.id]


def test_only_the_two_people_read_a_conversation(world):
    db, owner, helper, report = world
    conversation = relay.start_conversation(db, helper.id, lost_report_id=report.id)
    relay.send_message(db, conversation.id, helper.id, "Seen her?")
    stranger = accounts.create_user(db, "stranger@example.org")
    with pytest.raises(Forbidden):  # tried: a third user reading
        relay.read_messages(db, conversation.id, stranger.id)
    with pytest.raises(Forbidden):  # tried: a third user writing into it
        relay.send_message(db, conversation.id, stranger.id, "hello")
    with pytest.raises(UserError, match="your own report"):  # tried: writing to oneself
        relay.start_conversation(db, owner.id, lost_report_id=report.id)


def test_a_message_posted_twice_is_one_message(world):
    db, owner, helper, report = world
    conversation = relay.start_conversation(db, helper.id, lost_report_id=report.id)
    first = relay.send_message(db, conversation.id, helper.id, "At the park", submission_key="k1")
    again = relay.send_message(db, conversation.id, helper.id, "At the park", submission_key="k1")
    assert first == again and len(relay.read_messages(db, conversation.id, owner.id)) == 1
    assert len(notifications.inbox(db, owner.id)) == 1
    with pytest.raises(UserError, match="empty"):  # tried: only spaces
        relay.send_message(db, conversation.id, helper.id, "   ")
    with pytest.raises(UserError, match="at most"):  # tried: 5000 characters
        relay.send_message(db, conversation.id, helper.id, "x" * 5000)


def test_an_ended_search_takes_no_new_conversations_but_keeps_its_own(world):
    db, owner, helper, report = world
    conversation = relay.start_conversation(db, helper.id, lost_report_id=report.id)
    retention.mark_found(db, report.id, owner.id, now=NOW)
    latecomer = accounts.create_user(db, "late@example.org")
    with pytest.raises(UserError, match="has ended"):  # tried: contacting a found dog's owner
        relay.start_conversation(db, latecomer.id, lost_report_id=report.id)
    relay.send_message(db, conversation.id, owner.id, "She is home, thank you!")
    assert relay.read_messages(db, conversation.id, helper.id)[-1].body == "She is home, thank you!"


def test_deleting_an_account_deletes_its_conversations(world):
    db, owner, helper, report = world
    conversation = relay.start_conversation(db, helper.id, lost_report_id=report.id)
    relay.send_message(db, conversation.id, helper.id, "Seen her?")
    accounts.delete_account(db, helper.id)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    assert relay.conversations_for(db, owner.id) == []
    assert notifications.inbox(db, owner.id) == []  # the note about the message went with it
