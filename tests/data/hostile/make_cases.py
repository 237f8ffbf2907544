#!/usr/bin/env python3
"""Writes the hostile cases of this directory (run by tests/hostile_cases.rs).

Each case is written once and committed; this script exists so that the large inputs (a
thousand RDATE values, a deep MIME nest) can be regenerated and reviewed as code. Run it from
this directory: `python3 make_cases.py` (it overwrites the cases it knows, nothing else).

Actors: the organiser org@ext.test, the room room@corp.test (resource side), the organiser
mailbox me@corp.test with attendees bob@corp.test and carol@ext.test (organiser side), and the
attacker mallory@evil.test.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).parent
ROOM = "room@corp.test"


def vevent(uid, *, seq=0, dtstamp="20270101T120000Z", start="20270110T100000Z",
           end="20270110T110000Z", organizer="ORGANIZER;CN=Org:mailto:org@ext.test",
           attendees=None, extra=(), summary="Planning"):
    if attendees is None:
        attendees = [f"ATTENDEE;CUTYPE=ROOM;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{ROOM}"]
    lines = ["BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{dtstamp}", f"SEQUENCE:{seq}"]
    if start:
        lines.append(f"DTSTART:{start}")
    if end:
        lines.append(f"DTEND:{end}")
    lines += [f"SUMMARY:{summary}", organizer, *attendees, *extra, "END:VEVENT"]
    return lines


def vcalendar(method, *events):
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//imipd tests//hostile//EN"]
    if method:
        lines.append(f"METHOD:{method}")
    for e in events:
        lines += e
    lines.append("END:VCALENDAR")
    return "\r\n".join(fold(l) for l in lines) + "\r\n"


def fold(line):
    out, data = [], line.encode()
    while len(data) > 75:
        cut = 75
        while (data[cut] & 0xC0) == 0x80:
            cut -= 1
        out.append(data[:cut].decode())
        data = b" " + data[cut:]
    out.append(data.decode())
    return "\r\n".join(out)


def message(cal, *, method, mid, from_="Org <org@ext.test>", to=ROOM, headers=(),
            subject="Invitation: Planning", body=None):
    head = [*headers, f"From: {from_}", f"To: {to}", f"Subject: {subject}",
            "Date: Sat, 02 Jan 2027 07:00:00 +0000", f"Message-ID: <{mid}>", "MIME-Version: 1.0"]
    if body is not None:
        head.append(body[0])
        return "\r\n".join(head) + "\r\n\r\n" + body[1]
    head.append(f"Content-Type: text/calendar; charset=utf-8; method={method}")
    return "\r\n".join(head) + "\r\n\r\n" + cal


def case(name, expected, messages, store_before=None, policy=None):
    d = HERE / name
    d.mkdir(exist_ok=True)
    for old in d.glob("[0-9]*.eml"):
        old.unlink()
    for i, (label, text) in enumerate(messages, 1):
        (d / f"{i:02d}-{label}.eml").write_bytes(text.encode())
    if store_before:
        (d / "store-before.ics").write_text(store_before)
    if policy:
        (d / "policy.toml").write_text(policy)
    (d / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


def request(uid, mid, **kw):
    headers = kw.pop("headers", ())
    from_ = kw.pop("from_", "Org <org@ext.test>")
    method = kw.pop("method", "REQUEST")
    return message(vcalendar(method, vevent(uid, **kw)), method=method, mid=mid,
                   from_=from_, headers=headers)


# The booking the resource-side impersonation cases try to take over.
STORED = vcalendar(None, vevent("booked", attendees=[
    "ATTENDEE;ROLE=CHAIR;PARTSTAT=ACCEPTED:mailto:org@ext.test",
    f"ATTENDEE;CUTYPE=ROOM;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:{ROOM}"]))
ROOM_ATTENDEES = [
    "ATTENDEE;ROLE=CHAIR;PARTSTAT=ACCEPTED:mailto:org@ext.test",
    f"ATTENDEE;CUTYPE=ROOM;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{ROOM}"]


def cancel(mid, from_, organizer="ORGANIZER;CN=Org:mailto:org@ext.test", headers=()):
    cal = vcalendar("CANCEL", vevent("booked", seq=1, dtstamp="20270102T060000Z",
                                     organizer=organizer, attendees=ROOM_ATTENDEES,
                                     extra=["STATUS:CANCELLED"]))
    return message(cal, method="CANCEL", mid=mid, from_=from_, headers=headers)


def refused(code, contains=(), replies=0):
    out = {"outcome": "rejected", "reason": code}
    if contains:
        out["reason_contains"] = list(contains)
    if replies:
        out["replies"] = replies
    return out


ACCEPTED = {"outcome": "added", "reason": "accepted", "replies": 1}

# ---- limits -------------------------------------------------------------------------------

case("limit-message-size", {
    "note": "a message larger than max_message_bytes is refused before it is parsed",
    "limits": {"max_message_bytes": 2000},
    "messages": [refused("message_too_large", ["max_message_bytes"])],
}, [("large", message(vcalendar("REQUEST", vevent("big", extra=["DESCRIPTION:" + "x" * 3000])),
                      method="REQUEST", mid="size@ext.test"))])

parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(8))
cal = vcalendar("REQUEST", vevent("parts"))
case("limit-mime-parts", {
    "note": "a message of more MIME parts than max_mime_parts is refused",
    "limits": {"max_mime_parts": 5},
    "messages": [refused("too_many_mime_parts", ["max_mime_parts"])],
}, [("many-parts", message(None, method=None, mid="parts@ext.test", body=(
    'Content-Type: multipart/mixed; boundary="b"',
    parts + f"--b\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n{cal}--b--\r\n")))])

nest = f"Content-Type: text/calendar; method=REQUEST\r\n\r\n{vcalendar('REQUEST', vevent('deep'))}"
for level in range(6):
    nest = (f'Content-Type: multipart/mixed; boundary="n{level}"\r\n\r\n'
            f"--n{level}\r\n{nest}\r\n--n{level}--\r\n")
head, body = nest.split("\r\n\r\n", 1)
case("limit-mime-depth", {
    "note": "a calendar part nested deeper than max_mime_depth is refused",
    "limits": {"max_mime_depth": 3},
    "messages": [refused("mime_too_deep", ["max_mime_depth"])],
}, [("deep", message(None, method=None, mid="deep@ext.test", body=(head, body)))])

three = "".join(
    f"--b\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n"
    f"{vcalendar('REQUEST', vevent(f'part-{i}', start=f'2027011{i}T100000Z', end=f'2027011{i}T110000Z'))}"
    for i in range(3))
case("limit-calendar-parts", {
    "note": "calendar parts beyond max_calendar_parts are refused; the first ones are processed",
    "limits": {"max_calendar_parts": 2},
    "messages": [{"parts": [ACCEPTED, ACCEPTED, refused("too_many_calendar_parts", ["max_calendar_parts"])]}],
}, [("three-parts", message(None, method=None, mid="three@ext.test", body=(
    'Content-Type: multipart/mixed; boundary="b"', three + "--b--\r\n")))])

overrides = [vevent("objects", start="20270110T100000Z", extra=["RRULE:FREQ=DAILY;COUNT=10"])]
overrides += [vevent("objects", start=f"2027011{i}T120000Z", end=f"2027011{i}T130000Z",
                     extra=[f"RECURRENCE-ID:2027011{i}T100000Z"]) for i in range(1, 4)]
case("limit-calendar-objects", {
    "note": "a series with more overrides than max_calendar_objects allows is refused",
    "limits": {"max_calendar_objects": 3},
    "messages": [refused("too_many_objects", ["max_calendar_objects"])],
}, [("overrides", message(vcalendar("REQUEST", *overrides), method="REQUEST", mid="objects@ext.test"))])

case("limit-properties", {
    "note": "a component with more properties than max_properties is refused",
    "limits": {"max_properties": 20},
    "messages": [refused("too_many_properties", ["max_properties"])],
}, [("props", request("props", "props@ext.test", extra=[f"X-FILLER-{i}:{i}" for i in range(25)]))])

case("limit-line-length", {
    "note": "a content line longer than max_line_bytes after unfolding is refused, folded or not",
    "limits": {"max_line_bytes": 1000},
    "messages": [refused("line_too_long", ["max_line_bytes"])],
}, [("long-line", request("line", "line@ext.test", extra=["DESCRIPTION:" + "y" * 1500]))])

case("limit-attendees", {
    "note": "an event with more attendees than max_attendees is refused",
    "limits": {"max_attendees": 10},
    "messages": [refused("too_many_attendees", ["max_attendees"])],
}, [("crowd", request("crowd", "crowd@ext.test", attendees=ROOM_ATTENDEES + [
    f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:guest{i}@ext.test" for i in range(10)]))])

case("limit-secondly-bomb", {
    "note": "FREQ=SECONDLY without an end (Stalwart CVE-2025-59045) is refused with the default limits",
    "messages": [refused("recurrence_bomb", ["max_recurrence_iterations"])],
}, [("secondly", request("secondly", "secondly@ext.test", extra=["RRULE:FREQ=SECONDLY"]))])

case("limit-bysecond-bomb", {
    "note": "a yearly rule multiplied out by BYHOUR, BYMINUTE and BYSECOND is refused with the default limits",
    "messages": [refused("too_many_instances", ["max_instances"])],
}, [("bysecond", request("bysecond", "bysecond@ext.test", extra=[
    "RRULE:FREQ=YEARLY;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;BYHOUR=" + ",".join(map(str, range(24)))
    + ";BYMINUTE=" + ",".join(map(str, range(60))) + ";BYSECOND=" + ",".join(map(str, range(60)))]))])

case("limit-far-future-unbounded-series", {
    "note": "a series without an end that starts centuries ahead is refused (horizon_days)",
    "messages": [refused("beyond_horizon", ["horizon_days"])],
}, [("far", request("far", "far@ext.test", start="25000110T100000Z", end="25000110T110000Z",
                    extra=["RRULE:FREQ=DAILY"]))])

case("limit-thousands-of-rdates", {
    "note": "3000 RDATE values are refused with the default max_rdates",
    "messages": [refused("too_many_rdates", ["max_rdates"])],
}, [("rdates", request("rdates", "rdates@ext.test", extra=[
    "RDATE:" + ",".join(f"2027{m:02d}{d:02d}T{h:02d}0000Z" for m in range(2, 12)
                        for d in range(1, 29) for h in range(8, 19))[:3000 * 17]]))])

case("limit-daily-series-without-end-is-accepted", {
    "note": "control: an ordinary daily meeting without an end stays within every default limit",
    "messages": [ACCEPTED],
}, [("daily", request("daily", "daily@ext.test", extra=["RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"]))])

case("limit-replies-per-address-per-hour", {
    "note": "an invite flood: replies to one address beyond max_replies_per_address_per_hour are refused, nothing stored, nothing sent",
    "limits": {"max_replies_per_address_per_hour": 2},
    "messages": [ACCEPTED, ACCEPTED, refused("rate_limited", ["org@ext.test", "max_replies_per_address_per_hour"])],
}, [(f"flood-{i}", request(f"flood-{i}", f"flood-{i}@ext.test", start=f"2027011{i}T100000Z",
                           end=f"2027011{i}T110000Z")) for i in range(3)])

# ---- impersonation ------------------------------------------------------------------------

UNTRUSTED = refused("untrusted_sender")

case("forged-cancel-reply-to-names-the-organiser", {
    "note": "Nextcloud accepted a CANCEL on Reply-To; From is the attacker, Reply-To the organiser",
    "messages": [UNTRUSTED],
}, [("cancel", cancel("rt@evil.test", "Mallory <mallory@evil.test>", headers=["Reply-To: org@ext.test"]))],
    store_before=STORED)

case("forged-cancel-display-name-trick", {
    "note": "the display name shows the organiser's address, the address is the attacker's",
    "messages": [UNTRUSTED, UNTRUSTED],
}, [("quoted", cancel("dn1@evil.test", '"org@ext.test" <mallory@evil.test>')),
    ("angle", cancel("dn2@evil.test", '"Org <org@ext.test>" <mallory@evil.test>'))],
    store_before=STORED)

case("forged-cancel-look-alike-domains", {
    "note": "domains that contain, end with or resemble ext.test are other domains (Kolab's endswith)",
    "messages": [UNTRUSTED, UNTRUSTED, UNTRUSTED],
}, [("suffix", cancel("la1@evil.test", "Org <org@evilext.test>")),
    ("subdomain-of-evil", cancel("la2@evil.test", "Org <org@ext.test.evil.test>")),
    ("hyphen", cancel("la3@evil.test", "Org <org@ext-test.test>"))],
    store_before=STORED)

case("forged-cancel-self-appointed-sent-by", {
    "note": "the CANCEL names the attacker as the organiser's SENT-BY; the stored booking names no SENT-BY, so it is not believed",
    "messages": [UNTRUSTED],
}, [("sent-by", cancel("sb@evil.test", "Mallory <mallory@evil.test>",
                       organizer='ORGANIZER;CN=Org;SENT-BY="mailto:mallory@evil.test":mailto:org@ext.test'))],
    store_before=STORED)

case("forged-update-self-appointed-sent-by", {
    "note": "a REQUEST moving the booking, SENT-BY naming the attacker, From the attacker",
    "messages": [UNTRUSTED],
}, [("move", request("booked", "move@evil.test", seq=1, dtstamp="20270102T060000Z",
                     start="20270111T100000Z", end="20270111T110000Z", attendees=ROOM_ATTENDEES,
                     from_="Mallory <mallory@evil.test>",
                     organizer='ORGANIZER;CN=Org;SENT-BY="mailto:mallory@evil.test":mailto:org@ext.test'))],
    store_before=STORED)

case("forged-add-from-a-stranger", {
    "note": "an ADD of an instance to the stored booking, From not the organiser",
    "messages": [UNTRUSTED],
}, [("add", request("booked", "add@evil.test", method="ADD", seq=0, dtstamp="20270102T060000Z",
                    start="20270117T100000Z", end="20270117T110000Z", attendees=ROOM_ATTENDEES,
                    from_="Mallory <mallory@evil.test>"))],
    store_before=STORED)

ORG_STORED = vcalendar(None, vevent("mine", organizer="ORGANIZER;CN=Me:mailto:me@corp.test", attendees=[
    "ATTENDEE;ROLE=CHAIR;PARTSTAT=ACCEPTED:mailto:me@corp.test",
    "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@corp.test",
    "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:carol@ext.test"]))


def to_me(method, mid, from_, attendee, extra=(), start="20270110T100000Z", end="20270110T110000Z"):
    cal = vcalendar(method, vevent("mine", organizer="ORGANIZER;CN=Me:mailto:me@corp.test",
                                   attendees=[attendee], extra=extra, start=start, end=end,
                                   dtstamp="20270102T060000Z"))
    return message(cal, method=method, mid=mid, from_=from_, to="me@corp.test")


case("forged-reply-from-a-look-alike-of-the-organisers-domain", {
    "note": "bob@evilcorp.test answers for bob@corp.test (evilcorp.test ends with corp.test)",
    "mailbox": "me@corp.test",
    "messages": [UNTRUSTED],
}, [("reply", to_me("REPLY", "r1@evilcorp.test", "Bob <bob@evilcorp.test>",
                    "ATTENDEE;PARTSTAT=DECLINED:mailto:bob@corp.test"))],
    store_before=ORG_STORED)

case("forged-counter-from-a-stranger", {
    "note": "a COUNTER in bob's name, From the attacker",
    "mailbox": "me@corp.test",
    "messages": [refused("not_an_attendee")],
}, [("counter", to_me("COUNTER", "c1@evil.test", "Mallory <mallory@evil.test>",
                      "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@corp.test",
                      start="20270112T100000Z", end="20270112T110000Z"))],
    store_before=ORG_STORED)

case("forged-refresh-with-reply-to-of-an-attendee", {
    "note": "a REFRESH in carol's name from the attacker, Reply-To carol: no copy of the event leaks",
    "mailbox": "me@corp.test",
    "messages": [refused("not_an_attendee")],
}, [("refresh", message(vcalendar("REFRESH", ["BEGIN:VEVENT", "UID:mine", "DTSTAMP:20270102T060000Z",
                                              "ORGANIZER:mailto:me@corp.test", "ATTENDEE:mailto:carol@ext.test",
                                              "END:VEVENT"]),
                        method="REFRESH", mid="rf@evil.test", from_="Mallory <mallory@evil.test>",
                        to="me@corp.test", headers=["Reply-To: carol@ext.test"]))],
    store_before=ORG_STORED)

STRICT = 'require_authenticated = true\ntrusted_authserv_ids = ["mx.corp.test"]\n'
UNAUTH = refused("unauthenticated", ["mx.corp.test"])

case("strict-request-without-authentication-results", {
    "note": "strict trust: no Authentication-Results at all; refused without a decline (no backscatter)",
    "messages": [UNAUTH],
}, [("plain", request("strict-1", "s1@ext.test"))], policy=STRICT)

case("strict-dmarc-pass-from-an-untrusted-server-is-ignored", {
    "note": "strict trust: only the trusted authserv-id counts; an earlier hop's dmarc=pass is the sender's own claim",
    "messages": [UNAUTH],
}, [("untrusted", request("strict-2", "s2@ext.test", headers=[
    "Authentication-Results: mx.corp.test; dmarc=fail header.from=ext.test",
    "Authentication-Results: mx.evil.test; dmarc=pass header.from=ext.test"]))], policy=STRICT)

case("strict-dmarc-pass-for-another-domain", {
    "note": "strict trust: dmarc=pass for evil.test says nothing about From ext.test",
    "messages": [UNAUTH],
}, [("other", request("strict-3", "s3@ext.test", headers=[
    "Authentication-Results: mx.corp.test; dmarc=pass header.from=evil.test"]))], policy=STRICT)

case("strict-forged-cancel-with-the-organisers-from", {
    "note": "strict trust: From is the organiser but DMARC failed; the booking stays",
    "messages": [UNAUTH],
}, [("cancel", cancel("s4@evil.test", "Org <org@ext.test>", headers=[
    "Authentication-Results: mx.corp.test; dmarc=fail header.from=ext.test"]))],
    store_before=STORED, policy=STRICT)

case("strict-authenticated-request-is-accepted", {
    "note": "control: strict trust with dmarc=pass from the trusted server for the From domain",
    "messages": [ACCEPTED],
}, [("pass", request("strict-5", "s5@ext.test", headers=[
    "Authentication-Results: mx.corp.test; spf=pass smtp.mailfrom=ext.test; dkim=pass header.d=ext.test; dmarc=pass header.from=ext.test"]))],
    policy=STRICT)

# ---- loops --------------------------------------------------------------------------------

original = request("bounced", "bounced@corp.test", from_="Room <room@corp.test>")
dsn_body = ("--d\r\nContent-Type: text/plain\r\n\r\nDelivery to org@ext.test failed.\r\n"
            "--d\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.ext.test\r\n\r\n"
            "Final-Recipient: rfc822; org@ext.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            f"\r\n--d\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n--d--\r\n")
case("loop-delivery-report-is-not-answered", {
    "note": "a DSN carrying our own REPLY back is never answered nor applied",
    "messages": [{"outcome": "no_action", "reason": "delivery_report", "unchanged": True}],
}, [("dsn", message(None, method=None, mid="dsn@mx.ext.test", from_="Mail Delivery System <MAILER-DAEMON@mx.ext.test>",
                    headers=["Return-Path: <>", "Auto-Submitted: auto-replied"], subject="Undelivered Mail",
                    body=('Content-Type: multipart/report; report-type=delivery-status; boundary="d"', dsn_body)))])

case("loop-auto-reply-without-itip-is-not-answered", {
    "note": "an out-of-office answer (Auto-Submitted: auto-replied) without iTIP draws nothing",
    "messages": [{"outcome": "no_action", "reason": "no_calendar", "unchanged": True}],
}, [("ooo", message(None, method=None, mid="ooo@ext.test", headers=["Auto-Submitted: auto-replied"],
                    subject="Out of office", body=("Content-Type: text/plain", "I am away until Monday.\r\n")))])

own_reply = vcalendar("REPLY", vevent("booked", attendees=[
    f"ATTENDEE;CUTYPE=ROOM;PARTSTAT=ACCEPTED:mailto:{ROOM}"], dtstamp="20270102T060000Z"))
case("loop-own-reply-is-not-answered", {
    "note": "this mailbox's own REPLY coming back (Bcc to itself, a list) changes nothing and is not answered",
    "messages": [{"outcome": "no_action", "unchanged": True}],
}, [("own", message(own_reply, method="REPLY", mid="own@corp.test", from_="Room <room@corp.test>",
                    to="org@ext.test", headers=["Auto-Submitted: auto-generated"]))],
    store_before=STORED)

poll = lambda i: request("booked", f"poll-{i}@ext.test", dtstamp=f"20270102T0{i}0000Z",
                         attendees=ROOM_ATTENDEES, headers=["Auto-Submitted: auto-generated"])
case("loop-status-poll-ping-pong-is-stopped", {
    "note": "a server re-sending the unchanged REQUEST (RSVP=TRUE, NEEDS-ACTION) on every REPLY: answered status_poll_answers_per_hour times, then recorded and not answered",
    "limits": {"status_poll_answers_per_hour": 2},
    "messages": [
        {"outcome": "updated", "reason": "status_poll", "replies": 1},
        {"outcome": "updated", "reason": "status_poll", "replies": 1},
        {"outcome": "no_action", "reason": "loop_suppressed", "reason_contains": ["status_poll_answers_per_hour"], "unchanged": True},
        {"outcome": "no_action", "reason": "loop_suppressed", "unchanged": True},
    ],
}, [(f"poll-{i}", poll(i)) for i in range(1, 5)], store_before=STORED)
