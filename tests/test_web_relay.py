"""The contact relay on the real app: people write about a report through Search Party and never
see an e-mail address; the owner's contact preference decides who may start; a conversation is
for its two people only; notices link to what they announce; CSRF on every form."""

from __future__ import annotations

import re

import pytest
from owner_world import account, build_owner_world, post_found
from web_helpers import api, db_of, post

from search_party.community import contact_preferences


@pytest.fixture
def world(app):
    return build_owner_world(app)


def _conversation_id(response) -> int:
    match = re.fullmatch(r"/messages/(\d+)", response.headers.get("Location", ""))
    assert match, (response.status_code, response.get_data(as_text=True)[:1500])
    return int(match.group(1))


def test_a_flyer_reader_writes_to_the_owner_without_seeing_an_address(world, app):
    reader = account(app, "reader@example.org", display_name="Pat")
    form = reader.get(f"/contact/lost/{world.report_id}")
    assert form.status_code == 200 and b"Write to Rex&#39;s owner" in form.data
    sent = post(reader, f"/contact/lost/{world.report_id}", {"body": "I saw Rex by the park at 6pm",
                                                              "submission_key": "k1"})
    cid = _conversation_id(sent)
    twice = post(reader, f"/contact/lost/{world.report_id}", {"body": "I saw Rex by the park at 6pm",
                                                               "submission_key": "k1"})
    assert _conversation_id(twice) == cid  # a double tap is one message

    inbox = world.owner.get("/messages").get_data(as_text=True)
    assert "Rex (lost dog)" in inbox and "New message about Rex (lost dog)" in inbox
    thread = world.owner.get(f"/messages/{cid}").get_data(as_text=True)
    assert thread.count("I saw Rex by the park at 6pm") == 1 and "Pat" in thread
    assert "reader@example.org" not in thread and "owner@example.org" not in thread
    assert post(world.owner, f"/messages/{cid}", {"body": "Thank you! Which gate?", "submission_key": "r1"}
                ).status_code == 302
    reply = api(reader, "GET", f"/api/messages/{cid}").json
    assert [(m["from"], m["mine"]) for m in reply["messages"]] == [("Pat", True), ("Rex's owner", False)]
    assert "owner@example.org" not in str(reply)
    empty = post(reader, f"/messages/{cid}", {"body": "   ", "submission_key": "k2"})
    assert empty.status_code == 400 and b"cannot be empty" in empty.data
    notices = api(world.owner, "GET", "/api/inbox").json["notices"]
    assert any(n["link"] == f"/messages/{cid}" for n in notices)
    assert any(n["kind"] == "sighting_shared" and n["link"] == f"/reports/{world.report_id}" for n in notices)


def test_the_owner_may_take_messages_only_from_people_search_party_matched(world, app):
    with db_of(app) as db:
        contact_preferences.set_open_to(db, world.report_id, world.owner_id, "matched")
    refused = world.stranger.get(f"/contact/lost/{world.report_id}")
    assert refused.status_code == 403 and b"only from people Search Party matched" in refused.data
    assert api(world.stranger, "POST", f"/api/contact/lost/{world.report_id}",
               json={"body": "hello"}).status_code == 403
    # The neighbour who shared a sighting was matched by Search Party, and so is a finder.
    shared = api(world.neighbour, "POST", f"/api/contact/lost/{world.report_id}",
                 json={"body": "That was my front gate camera, this morning"})
    assert shared.status_code == 201 and shared.json["message"]["from"] == "Sam"
    finder = account(app, "finder@example.org")
    post_found(finder)
    assert post(finder, f"/contact/lost/{world.report_id}", {"body": "I have a dog like Rex"}).status_code == 302
    own = post(world.owner, f"/contact/lost/{world.report_id}", {"body": "me"})
    assert own.status_code == 400 and b"your own report" in own.data


def test_the_owner_writes_to_a_finder(world, app):
    finder = account(app, "finder@example.org", display_name="Jo")
    found_id = post_found(finder).json["report"]["id"]
    cid = _conversation_id(post(world.owner, f"/contact/found/{found_id}", {"body": "Is that Rex?"}))
    thread = api(finder, "GET", f"/api/messages/{cid}").json
    assert thread["conversation"]["title"] == "a found dog" and thread["conversation"]["you_are"] == "owner"
    # The finder's report: the owner writes as a contact, by display name or "a neighbour".
    assert [m["from"] for m in thread["messages"]] == ["a neighbour"]
    sent = api(finder, "POST", f"/api/messages/{cid}", json={"body": "Yes, red collar", "submission_key": "a"})
    assert sent.status_code == 201 and sent.json["from"] == "the finder"


def test_a_conversation_is_for_its_two_people_only(world, app):
    reader = account(app, "reader@example.org")
    cid = _conversation_id(post(reader, f"/contact/lost/{world.report_id}", {"body": "seen him"}))
    anonymous = app.test_client()
    for url in (f"/messages/{cid}", f"/api/messages/{cid}"):
        for client in (reader, world.owner):
            assert client.get(url).status_code == 200, url
        for client in (world.stranger, world.neighbour):
            assert client.get(url).status_code == 403, url
    for client in (world.stranger, world.neighbour):
        assert post(client, f"/messages/{cid}", {"body": "let me in"}).status_code == 403
        assert api(client, "POST", f"/api/messages/{cid}", json={"body": "let me in"}).status_code == 403
    assert anonymous.get(f"/messages/{cid}").headers["Location"].startswith("/login?next=")
    assert anonymous.get(f"/api/messages/{cid}").status_code == 401
    assert anonymous.get("/messages").headers["Location"].startswith("/login?next=")
    assert anonymous.get(f"/contact/lost/{world.report_id}").headers["Location"].startswith("/login?next=")
    assert api(world.stranger, "GET", "/api/messages").json == {"conversations": []}
    assert b"seen him" not in world.stranger.get("/messages").data
    assert world.stranger.get("/messages/99999").status_code == 403
    # Marking someone else's notice read is accepted and changes nothing.
    notice = api(world.owner, "GET", "/api/inbox").json["notices"][0]
    assert api(world.stranger, "POST", f"/api/inbox/{notice['id']}/read").status_code == 200
    assert api(world.owner, "GET", "/api/inbox?unread=1").json["notices"][0]["id"] == notice["id"]
    assert anonymous.get("/api/inbox").status_code == 401


def test_relay_forms_need_the_csrf_token(world, app):
    """Tried: starting a conversation and replying, as a form and through the API, without a token."""
    reader = account(app, "reader@example.org")
    cid = _conversation_id(post(reader, f"/contact/lost/{world.report_id}", {"body": "first"}))
    for url in (f"/contact/lost/{world.report_id}", f"/messages/{cid}", f"/api/messages/{cid}",
                f"/api/contact/lost/{world.report_id}"):
        response = reader.post(url, data={"body": "no token"})
        assert response.status_code == 400, url
    assert "no token" not in str(api(reader, "GET", f"/api/messages/{cid}").json)
