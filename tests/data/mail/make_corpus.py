#!/usr/bin/env python3
"""Writes the golden mail corpus: tests/data/mail/<vendor>/<name>.eml and, beside each,
<name>.expected.json with what imipd's extractor must find.

Run from anywhere: `python3 tests/data/mail/make_corpus.py`. Output is deterministic; the files
are committed, and the test runner (tests/mail_corpus.rs) only reads them.

Each message is written in the MIME shape the named client produces (layout, part types,
transfer encodings, charsets, header quirks) as documented in the project's interop notes;
addresses are @example.test style. The expectations are written here, from what each message was
built to contain (not by running imipd), and the runner checks them as a subset of the
extraction: only the keys listed are compared.
"""

import base64
import json
import os
import quopri
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tnef  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))
CRLF = "\r\n"


# ---------------------------------------------------------------- iCalendar text

def ical(method, uid, *, seq=0, stamp="20261120T090000Z", summary="Weekly sync",
         organizer="mailto:alice@example.test", attendees=("mailto:room1@example.test",),
         start="DTSTART;TZID=Europe/Berlin:20261203T150000",
         end="DTEND;TZID=Europe/Berlin:20261203T160000", prodid="-//Example//Cal//EN",
         extra=(), recurrence_id=None, method_line=True, vtimezone=None, events=None,
         partstat="NEEDS-ACTION"):
    lines = ["BEGIN:VCALENDAR", f"PRODID:{prodid}", "VERSION:2.0"]
    if method_line and method:
        lines.append(f"METHOD:{method}")
    if vtimezone:
        lines += vtimezone
    for ev in events or [dict(uid=uid, seq=seq, stamp=stamp, recurrence_id=recurrence_id,
                              summary=summary, start=start, end=end)]:
        lines += ["BEGIN:VEVENT", f"UID:{ev['uid']}", f"SEQUENCE:{ev['seq']}",
                  f"DTSTAMP:{ev['stamp']}"]
        if ev.get("recurrence_id"):
            lines.append(f"RECURRENCE-ID;TZID=Europe/Berlin:{ev['recurrence_id']}")
        lines += [ev["start"], ev["end"], f"SUMMARY:{ev['summary']}"]
        if organizer:
            lines.append(f"ORGANIZER;CN=Alice Example:{organizer}")
        for a in attendees:
            lines.append(f"ATTENDEE;CUTYPE=RESOURCE;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat};RSVP=TRUE:{a}")
        lines += list(extra)
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return fold_lines(lines)


def fold_lines(lines):
    out = []
    for line in lines:
        raw = line.encode("utf-8")
        chunks = []
        while len(raw) > 75:
            cut = 75 if not chunks else 74
            while cut > 0 and (raw[cut] & 0xC0) == 0x80:
                cut -= 1
            chunks.append(raw[:cut])
            raw = raw[cut:]
        chunks.append(raw)
        out.append(b"\r\n ".join(chunks).decode("utf-8"))
    return CRLF.join(out) + CRLF


BERLIN = ["BEGIN:VTIMEZONE", "TZID:Europe/Berlin", "BEGIN:STANDARD", "DTSTART:19701025T030000",
          "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
          "END:STANDARD", "BEGIN:DAYLIGHT", "DTSTART:19700329T020000", "TZOFFSETFROM:+0100",
          "TZOFFSETTO:+0200", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
          "END:VTIMEZONE"]
EXCHANGE_TZ = ["BEGIN:VTIMEZONE", "TZID:W. Europe Standard Time", "BEGIN:STANDARD",
               "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
               "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
               "BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100",
               "TZOFFSETTO:+0200", "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3",
               "END:DAYLIGHT", "END:VTIMEZONE"]


# ---------------------------------------------------------------- MIME tree

class Leaf:
    def __init__(self, ctype, body, cte="7bit", params=(), disposition=None, headers=(),
                 expect=None, label=None):
        self.ctype, self.body, self.cte = ctype, body, cte
        self.params, self.disposition, self.headers = list(params), disposition, list(headers)
        self.expect, self.label = expect, label


class Multi:
    def __init__(self, subtype, children, params=()):
        self.subtype, self.children, self.params = subtype, children, list(params)


class Attached:
    """A message/rfc822 part holding a whole message."""

    def __init__(self, message, cte=None):
        self.message, self.cte = message, cte


class Msg:
    def __init__(self, headers, root):
        self.headers, self.root = headers, root


_boundary = [0]


def boundary():
    _boundary[0] += 1
    return f"----=_Part_{_boundary[0]:04d}_imipd"


def params_text(params):
    return "".join(f"; {k}={v}" for k, v in params)


def encode_body(body, cte):
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if cte == "base64":
        b64 = base64.b64encode(raw).decode()
        return CRLF.join(b64[i:i + 76] for i in range(0, len(b64), 76)).encode() + b"\r\n"
    if cte == "quoted-printable":
        return quopri.encodestring(raw.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


def render_part(node):
    if isinstance(node, Leaf):
        head = [f"Content-Type: {node.ctype}{params_text(node.params)}"]
        if node.cte:
            head.append(f"Content-Transfer-Encoding: {node.cte}")
        if node.disposition:
            head.append(f"Content-Disposition: {node.disposition}")
        head += node.headers
        return (CRLF.join(head) + CRLF + CRLF).encode() + encode_body(node.body, node.cte)
    if isinstance(node, Multi):
        b = boundary()
        head = f"Content-Type: multipart/{node.subtype}; boundary=\"{b}\"{params_text(node.params)}"
        out = (head + CRLF + CRLF).encode()
        for child in node.children:
            out += f"--{b}\r\n".encode() + render_part(child)
        return out + f"--{b}--\r\n".encode()
    inner = render(node.message)
    if node.cte == "base64":
        return b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + \
            encode_body(inner, "base64")
    return b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner


def render(msg):
    head = CRLF.join(msg.headers) + CRLF + "MIME-Version: 1.0" + CRLF
    return head.encode("utf-8") + render_part(msg.root)


def expected_parts(msg):
    """Walks the tree depth-first as imipd does, giving each calendar leaf its index/path."""
    found, labels = [], {}

    def walk(node, path, counter, fwd):
        index = counter[0]
        counter[0] += 1
        if isinstance(node, Multi):
            for n, child in enumerate(node.children, 1):
                walk(child, f"{path}.{n}" if path else str(n), counter, fwd)
        elif isinstance(node, Attached):
            inner = node.message
            inner_fwd = dict(depth=(fwd["depth"] + 1) if fwd else 1,
                             sender=inner_sender(inner))
            root_path = path if isinstance(inner.root, Multi) else f"{path}.1"
            walk(inner.root, root_path, counter, inner_fwd)
        elif node.expect is not None:
            e = dict(index=index, path=path)
            e.update(node.expect)
            e["forwarded"] = fwd
            if node.label:
                labels[node.label] = index
            found.append(e)

    walk(msg.root, "" if isinstance(msg.root, Multi) else "1", [0], None)
    for e in found:
        dup = e.pop("dup_of", None)
        e["duplicate_of"] = labels[dup] if dup else None
    return found


def inner_sender(msg):
    facts = {}
    for h in msg.headers:
        name, _, v = h.partition(":")
        if name.lower() == "from":
            facts["from"] = v.strip().split("<")[-1].rstrip(">").strip().lower()
        if name.lower() == "message-id":
            facts["message_id"] = v.strip().strip("<>")
    return facts


def cal_expect(ctype, method_param, body_method, uids, *, vcal=False, source="calendar",
               contains=(), file_name=None):
    e = dict(content_type=ctype, method_param=method_param, body_method=body_method,
             vcalendar=vcal, source=source, objects=[{"uid": u} for u in uids])
    if contains:
        e["text_contains"] = list(contains)
    if file_name is not None:
        e["file_name"] = file_name
    return e


CASES = []


def case(vendor, name, msg, sender=None, problems=(), report=None, note=""):
    CASES.append((vendor, name, msg, sender or {}, list(problems), report, note))


def headers(frm, to, subject, mid, date="Fri, 20 Nov 2026 10:00:00 +0100", extra=()):
    return [f"From: {frm}", f"To: {to}", f"Subject: {subject}", f"Date: {date}",
            f"Message-ID: <{mid}>"] + list(extra)


ALICE = "Alice Example <alice@example.test>"
ROOM = "Room 1 <room1@example.test>"
PLAIN = "You have been invited to Weekly sync.\r\n"
HTML = "<html><body><p>You have been invited to <b>Weekly sync</b>.</p></body></html>\r\n"


# ================================================================ Microsoft

def outlook_cases():
    uid = "040000008200E00074C5B7101A82E00800000000D0A1B2C3D4E5F601000000000000000010000000AABBCCDDEEFF00112233445566778899"
    body = ical("REQUEST", uid, prodid="Microsoft Exchange Server 2010", vtimezone=EXCHANGE_TZ,
                start="DTSTART;TZID=W. Europe Standard Time:20261203T150000",
                end="DTEND;TZID=W. Europe Standard Time:20261203T160000",
                extra=["X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE", "X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY",
                       "X-MICROSOFT-CDO-APPT-SEQUENCE:0", "X-MICROSOFT-CDO-OWNERAPPTID:2120000001"])
    ar = ["Authentication-Results: spf=pass (sender IP is 192.0.2.10)\r\n smtp.mailfrom=example.test; dkim=pass (signature was verified)\r\n header.d=example.test;dmarc=pass action=none header.from=example.test;compauth=pass reason=100"]
    case("outlook", "exchange365-request", Msg(
        headers(ALICE, ROOM, "Weekly sync", "DB9PR01MB0001.eurprd01.prod.exchangelabs.com",
                extra=ar + ["Thread-Topic: Weekly sync", "X-MS-Exchange-Organization-SCL: 1"]),
        Multi("alternative", [
            Leaf("text/plain", PLAIN, "quoted-printable", [("charset", '"utf-8"')]),
            Leaf("text/html", HTML, "quoted-printable", [("charset", '"utf-8"')]),
            Leaf("text/calendar", body, "base64", [("charset", '"utf-8"'), ("method", "REQUEST")],
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [uid])),
        ])),
        sender={"from": "alice@example.test", "authentication_results": [
            {"authserv_id": "", "results": [
                {"method": "spf", "result": "pass", "properties": [["smtp.mailfrom", "example.test"]]},
                {"method": "dkim", "result": "pass", "properties": [["header.d", "example.test"]]},
                {"method": "dmarc", "result": "pass", "properties": [["header.from", "example.test"]]},
                {"method": "compauth", "result": "pass", "reason": "100", "properties": []}]}]},
        note="Exchange Online writes Authentication-Results without an authserv-id (the header starts with 'spf=pass'): the results are read, the authserv-id is empty, so no configured trusted id can match it")

    uid2 = "040000008200E00074C5B7101A82E00800000000F0E1D2C3B4A59601000000000000000010000000102030405060708090A0B0C0D0E0F00"
    case("outlook", "outlook-com-flat", Msg(
        headers("Alice <alice@example.test>", ROOM, "Board meeting", "flat-1@outlook.example.test"),
        Multi("alternative", [
            Leaf("text/plain", PLAIN, "quoted-printable", [("charset", '"us-ascii"')]),
            Leaf("text/html", HTML, "quoted-printable", [("charset", '"us-ascii"')]),
            Leaf("text/calendar", ical("REQUEST", uid2, summary="Board meeting",
                                       prodid="Microsoft Exchange Server 2010"),
                 "base64", [("charset", '"utf-8"'), ("method", "REQUEST")],
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [uid2])),
        ])))

    reply = ical("REPLY", uid, organizer=None, prodid="Microsoft Exchange Server 2010",
                 attendees=("mailto:bob@example.test",), partstat="ACCEPTED", seq=0,
                 stamp="20261121T080000Z")
    case("outlook", "exchange2010-reply-no-organizer", Msg(
        headers("Bob <bob@example.test>", ALICE, "Accepted: Weekly sync",
                "reply-2010@mail.example.test", extra=["Thread-Index: AdcA1b2C3d4E5f6=="]),
        Multi("alternative", [
            Leaf("text/plain", "", "quoted-printable", [("charset", '"us-ascii"')]),
            Leaf("text/calendar", reply, "quoted-printable", [("charset", '"utf-8"'), ("method", "REPLY")],
                 expect=cal_expect("text/calendar", "REPLY", "REPLY", [uid])),
        ])))

    cancel = ical("CANCEL", uid, seq=1, prodid="Microsoft Exchange Server 2010", extra=["STATUS:CANCELLED"])
    case("outlook", "exchange-cancel", Msg(
        headers(ALICE, ROOM, "Canceled: Weekly sync", "cancel-1@mail.example.test",
                extra=["Importance: high", "X-Priority: 1"]),
        Multi("alternative", [
            Leaf("text/plain", "The meeting was canceled.\r\n", "quoted-printable", [("charset", '"us-ascii"')]),
            Leaf("text/html", HTML, "quoted-printable", [("charset", '"us-ascii"')]),
            Leaf("text/calendar", cancel, "base64", [("charset", '"utf-8"'), ("method", "CANCEL")],
                 expect=cal_expect("text/calendar", "CANCEL", "CANCEL", [uid])),
        ])))

    counter = ical("COUNTER", uid, organizer="mailto:alice@example.test",
                   attendees=("mailto:bob@example.test",), partstat="TENTATIVE",
                   start="DTSTART;TZID=W. Europe Standard Time:20261203T170000",
                   end="DTEND;TZID=W. Europe Standard Time:20261203T180000",
                   prodid="Microsoft Exchange Server 2010")
    case("outlook", "outlook-counter", Msg(
        headers("Bob <bob@example.test>", ALICE, "New Time Proposed: Weekly sync",
                "counter-1@mail.example.test"),
        Multi("alternative", [
            Leaf("text/plain", "Bob proposed a new time.\r\n", "7bit", [("charset", "us-ascii")]),
            Leaf("text/calendar", counter, "base64", [("charset", '"utf-8"'), ("method", "COUNTER")],
                 expect=cal_expect("text/calendar", "COUNTER", "COUNTER", [uid])),
        ])))

    # TNEF: a meeting request inside winmail.dat.
    start, end = 1796306400, 1796310000  # 2026-12-03 14:00Z–15:00Z
    goid = tnef.global_object_id(1795600000, 0x1122334455667788)
    tnef_uid = goid[:16].hex().upper() + "00000000" + goid[20:].hex().upper()
    dat = tnef.meeting("IPM.Schedule.Meeting.Request", "Quarterly review (TNEF)", start, end,
                       "alice@example.test", "Alice Example",
                       [("Room 1", "room1@example.test", 3), ("Bob", "bob@example.test", 1)],
                       goid, sequence=2, location="Room 1")
    case("outlook", "exchange-tnef-request", Msg(
        headers(ALICE, ROOM, "Quarterly review (TNEF)", "tnef-1@mail.example.test"),
        Multi("mixed", [
            Leaf("text/plain", "When: Thursday, 3 December 2026 15:00-16:00.\r\n", "quoted-printable", [("charset", '"us-ascii"')]),
            Leaf("application/ms-tnef", dat, "base64", [("name", '"winmail.dat"')],
                 disposition='attachment; filename="winmail.dat"',
                 expect=cal_expect("application/ms-tnef", None, "REQUEST", [tnef_uid],
                                   source="tnef", file_name="winmail.dat",
                                   contains=["DTSTART:20261203T140000Z", "DTEND:20261203T150000Z",
                                             "SEQUENCE:2", "SUMMARY:Quarterly review (TNEF)",
                                             "LOCATION:Room 1",
                                             "ORGANIZER;CN=Alice Example:mailto:alice@example.test",
                                             "ATTENDEE;CN=Room 1;CUTYPE=RESOURCE;ROLE=NON-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:room1@example.test",
                                             "ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT"])),
        ])), note="winmail.dat built by tests/data/mail/tnef.py (MS-OXTNEF)")

    fgoid = tnef.global_object_id(1795600000, 0, foreign_uid="ext-42@calendar.example.test")
    dat2 = tnef.meeting("IPM.Schedule.Meeting.Canceled", "Canceled: Offsite", start, end,
                        "alice@example.test", "Alice Example",
                        [("Room 1", "room1@example.test", 3)], fgoid, sequence=3)
    case("outlook", "exchange-tnef-cancel-foreign-uid", Msg(
        headers(ALICE, ROOM, "Canceled: Offsite", "tnef-2@mail.example.test"),
        Multi("mixed", [
            Leaf("text/plain", "Canceled.\r\n", "7bit"),
            Leaf("application/ms-tnef", dat2, "base64", [],
                 disposition='attachment; filename="winmail.dat"',
                 expect=cal_expect("application/ms-tnef", None, "CANCEL",
                                   ["ext-42@calendar.example.test"], source="tnef",
                                   contains=["METHOD:CANCEL", "SEQUENCE:3"])),
        ])))

    dat3 = tnef.meeting("IPM.Schedule.Meeting.Request", "Daily standup", start, end,
                        "alice@example.test", "Alice Example", [("Room 1", "room1@example.test", 3)],
                        tnef.global_object_id(1795600000, 7), recurring=True)
    case("outlook", "exchange-tnef-recurring", Msg(
        headers(ALICE, ROOM, "Daily standup", "tnef-3@mail.example.test"),
        Multi("mixed", [
            Leaf("text/plain", "Daily.\r\n", "7bit"),
            Leaf("application/ms-tnef", dat3, "base64", [("name", "winmail.dat")]),
        ])), problems=[{"path": "2", "code": "tnef_recurring"}])

    case("outlook", "outlook-tnef-rich-text-mail", Msg(
        headers(ALICE, "Bob <bob@example.test>", "Notes", "tnef-4@mail.example.test"),
        Multi("mixed", [
            Leaf("text/plain", "See notes.\r\n", "7bit"),
            Leaf("application/ms-tnef", tnef.rich_text_mail("Notes"), "base64", [("name", "winmail.dat")]),
        ])), problems=[{"path": "2", "code": "tnef_not_meeting"}])

    broken = bytearray(dat)
    broken[60] ^= 0xFF  # corrupts a byte inside an attribute: the checksum no longer matches
    case("outlook", "exchange-tnef-corrupt", Msg(
        headers(ALICE, ROOM, "Quarterly review", "tnef-5@mail.example.test"),
        Multi("mixed", [
            Leaf("text/plain", "x\r\n", "7bit"),
            Leaf("application/ms-tnef", bytes(broken), "base64", [("name", "winmail.dat")]),
        ])), problems=[{"path": "2", "code": "tnef_unreadable"}])

    case("outlook", "outlook-oof-auto-reply", Msg(
        headers("Bob <bob@example.test>", ROOM, "Automatic reply: Weekly sync", "oof-1@mail.example.test",
                extra=["Auto-Submitted: auto-replied", "X-Auto-Response-Suppress: All",
                       "In-Reply-To: <imipd-0123@example.test>",
                       "References: <invite-1@example.test> <imipd-0123@example.test>"]),
        Leaf("text/plain", "I am out of the office until Monday.\r\n", "7bit", [("charset", "us-ascii")])),
        sender={"auto_submitted": "auto-replied", "auto_response_suppress": ["All"],
                "in_reply_to": ["imipd-0123@example.test"],
                "references": ["invite-1@example.test", "imipd-0123@example.test"]})


# ================================================================ Google

def gmail_cases():
    uid = "7kukuqgdi0ae2t3ls0j1mcvr1k@google.com"
    body = ical("REQUEST", uid, prodid="-//Google Inc//Google Calendar 70.9054//EN",
                extra=["X-MICROSOFT-CDO-OWNERAPPTID:-1906264523", "X-NUM-GUESTS:0"])
    ar = ["Authentication-Results: mx.example.test;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.test header.i=@example.test header.b=\"AbC/dE+f\";\r\n\tdkim-atps=neutral",
          "Authentication-Results: mx.example.test; spf=pass (mailfrom) smtp.mailfrom=bounces+abc@example.test (client-ip=192.0.2.1; helo=mail-sor-f41.google.com; envelope-from=bounces+abc@example.test; receiver=<UNKNOWN>);\r\n dmarc=pass (p=none dis=none) header.from=example.test"]
    case("gmail", "gmail-request", Msg(
        headers(ALICE, "room1@example.test", "Invitation: Weekly sync @ Thu 3 Dec 2026 15:00 - 16:00 (CET) (room1@example.test)",
                "000000000000a1b2c3d4e5f6@google.com",
                extra=["Sender: Google Calendar <calendar-notification@google.com>",
                       "Reply-To: Alice Example <alice@example.test>",
                       "Return-Path: <3abc@calendar-server.bounces.google.com>",
                       "Delivered-To: room1@example.test"] + ar),
        Multi("mixed", [
            Multi("alternative", [
                Leaf("text/plain", PLAIN, "quoted-printable", [("charset", '"UTF-8"')]),
                Leaf("text/html", HTML, "quoted-printable", [("charset", '"UTF-8"')]),
                Leaf("text/calendar", body, "7bit", [("charset", '"UTF-8"'), ("method", "REQUEST")],
                     expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [uid]), label="inline"),
            ]),
            Leaf("application/ics", body, "base64", [("name", '"invite.ics"')],
                 disposition='attachment; filename="invite.ics"',
                 expect=dict(cal_expect("application/ics", None, "REQUEST", [uid], file_name="invite.ics"),
                             dup_of="inline")),
        ])),
        sender={"from": "alice@example.test", "from_name": "Alice Example",
                "sender": "calendar-notification@google.com", "reply_to": "alice@example.test",
                "return_path": "3abc@calendar-server.bounces.google.com",
                "delivered_to": ["room1@example.test"],
                "authentication_results": [
                    {"authserv_id": "mx.example.test", "results": [
                        {"method": "dkim", "result": "pass",
                         "properties": [["header.d", "example.test"], ["header.i", "@example.test"], ["header.b", "AbC/dE+f"]]},
                        {"method": "dkim-atps", "result": "neutral", "properties": []}]},
                    {"authserv_id": "mx.example.test", "results": [
                        {"method": "spf", "result": "pass",
                         "properties": [["smtp.mailfrom", "bounces+abc@example.test"]]},
                        {"method": "dmarc", "result": "pass",
                         "properties": [["header.from", "example.test"]]}]}]})

    reply = ical("REPLY", "room-booking-77@example.test", organizer="mailto:room1@example.test",
                 attendees=("mailto:carol@example.test",), partstat="ACCEPTED",
                 prodid="-//Google Inc//Google Calendar 70.9054//EN")
    case("gmail", "gmail-reply", Msg(
        headers("Carol <carol@example.test>", ROOM, "Accepted: Offsite @ Thu 3 Dec 2026 15:00 - 16:00 (CET) (room1@example.test)",
                "000000000000f00dfeed@google.com",
                extra=["Sender: Google Calendar <calendar-notification@google.com>"]),
        Multi("mixed", [
            Multi("alternative", [
                Leaf("text/plain", "Carol has accepted this invitation.\r\n", "7bit", [("charset", '"UTF-8"')]),
                Leaf("text/html", HTML, "quoted-printable", [("charset", '"UTF-8"')]),
                Leaf("text/calendar", reply, "7bit", [("charset", '"UTF-8"'), ("method", "REPLY")],
                     expect=cal_expect("text/calendar", "REPLY", "REPLY", ["room-booking-77@example.test"]), label="i"),
            ]),
            Leaf("application/ics", reply, "base64", [("name", '"invite.ics"')],
                 disposition='attachment; filename="invite.ics"',
                 expect=dict(cal_expect("application/ics", None, "REPLY", ["room-booking-77@example.test"]), dup_of="i")),
        ])), sender={"from": "carol@example.test", "sender": "calendar-notification@google.com"})

    events = [dict(uid="recur-9@google.com", seq=0, stamp="20261120T090000Z", summary="Standup",
                   start="DTSTART;TZID=Europe/Berlin:20261201T090000",
                   end="DTEND;TZID=Europe/Berlin:20261201T091500"),
              dict(uid="recur-9@google.com", seq=1, stamp="20261120T090000Z", summary="Standup (moved)",
                   recurrence_id="20261203T090000",
                   start="DTSTART;TZID=Europe/Berlin:20261203T100000",
                   end="DTEND;TZID=Europe/Berlin:20261203T101500")]
    body = ical("REQUEST", None, events=events, vtimezone=BERLIN,
                prodid="-//Google Inc//Google Calendar 70.9054//EN",
                extra=["RRULE:FREQ=DAILY;COUNT=5"])
    case("gmail", "gmail-recurring-with-exception", Msg(
        headers(ALICE, "room1@example.test", "Updated invitation: Standup", "updated-9@google.com",
                extra=["Sender: Google Calendar <calendar-notification@google.com>"]),
        Multi("mixed", [
            Multi("alternative", [
                Leaf("text/plain", PLAIN, "7bit"),
                Leaf("text/calendar", body, "7bit", [("charset", '"UTF-8"'), ("method", "REQUEST")],
                     expect=dict(cal_expect("text/calendar", "REQUEST", "REQUEST", []),
                                 objects=[{"uid": "recur-9@google.com", "sequence": "0"},
                                          {"uid": "recur-9@google.com", "sequence": "1",
                                           "recurrence_id": "20261203T090000"}]), label="c"),
            ]),
            Leaf("application/ics", body, "base64", [("name", '"invite.ics"')],
                 disposition='attachment; filename="invite.ics"',
                 expect=dict(cal_expect("application/ics", None, "REQUEST", ["recur-9@google.com", "recur-9@google.com"]), dup_of="c")),
        ])))

    counter = ical("COUNTER", "7kukuqgdi0ae2t3ls0j1mcvr1k@google.com", attendees=("mailto:bob@example.test",),
                   partstat="ACCEPTED", start="DTSTART:20261203T160000Z", end="DTEND:20261203T170000Z",
                   prodid="-//Google Inc//Google Calendar 70.9054//EN", extra=["COMMENT:Can we do an hour later?"])
    case("gmail", "gmail-propose-new-time", Msg(
        headers("Bob <bob@example.test>", ALICE, "New time proposed: Weekly sync", "counter-g@google.com",
                extra=["Sender: Google Calendar <calendar-notification@google.com>"]),
        Multi("mixed", [
            Multi("alternative", [
                Leaf("text/plain", "Bob proposed a new time.\r\n", "7bit"),
                Leaf("text/calendar", counter, "7bit", [("charset", '"UTF-8"'), ("method", "COUNTER")],
                     expect=cal_expect("text/calendar", "COUNTER", "COUNTER", ["7kukuqgdi0ae2t3ls0j1mcvr1k@google.com"],
                                       contains=["COMMENT:Can we do an hour later?"]), label="c"),
            ]),
            Leaf("application/ics", counter, "base64", [("name", '"invite.ics"')],
                 disposition='attachment; filename="invite.ics"',
                 expect=dict(cal_expect("application/ics", None, "COUNTER", ["7kukuqgdi0ae2t3ls0j1mcvr1k@google.com"]), dup_of="c")),
        ])))

    # Gmail's "forward" of an invitation: the forwarder is From, the method parameter is gone.
    fwd = ical("REQUEST", uid, prodid="-//Google Inc//Google Calendar 70.9054//EN")
    case("gmail", "gmail-inline-forward-no-method", Msg(
        headers("Dave <dave@example.test>", ROOM, "Fwd: Invitation: Weekly sync", "fwd-inline-1@mail.example.test"),
        Multi("mixed", [
            Leaf("text/plain", "---------- Forwarded message ---------\r\nFrom: Alice\r\n", "7bit"),
            Leaf("text/calendar", fwd, "base64", [("charset", "UTF-8"), ("name", "invite.ics")],
                 disposition='attachment; filename="invite.ics"',
                 expect=cal_expect("text/calendar", None, "REQUEST", [uid])),
        ])), sender={"from": "dave@example.test"})


# ================================================================ Apple, Mozilla, GNOME

def apple_mozilla_gnome_cases():
    uid = "5F3C2A1E-8B9D-4C7E-A6F0-1D2E3F4A5B6C"
    body = ical("REQUEST", uid, prodid="-//Apple Inc.//macOS 15.1//EN", seq=0, stamp="20261120T091500Z",
                summary="Design review – Müller", vtimezone=BERLIN,
                extra=["X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC", "LAST-MODIFIED:20261120T091500Z"])
    case("apple", "apple-calendar-request", Msg(
        headers("Alice Example <alice@example.test>", ROOM, "Invitation: Design review – Müller",
                "A1B2C3D4-E5F6-7890-ABCD-EF0123456789@example.test"),
        Multi("mixed", [
            Leaf("text/plain", "Alice Example has invited you to Design review.\r\n", "quoted-printable", [("charset", "utf-8")]),
            Leaf("text/calendar", body, "quoted-printable",
                 [("charset", "utf-8"), ("method", "REQUEST"), ("name", "iCal-20261120-091500.ics")],
                 disposition='attachment; filename="iCal-20261120-091500.ics"',
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [uid],
                                   contains=["SUMMARY:Design review – Müller"])),
        ])))

    reply = ical("REPLY", "room-booking-88@example.test", organizer="mailto:room1@example.test",
                 attendees=("mailto:alice@example.test",), partstat="DECLINED",
                 prodid="-//Apple Inc.//iPhone OS 18.1//EN")
    case("apple", "apple-ios-reply", Msg(
        headers("Alice Example <alice@example.test>", ROOM, "Invitation Declined: Offsite", "ios-reply-1@example.test"),
        Multi("alternative", [
            Leaf("text/plain", "Alice Example has declined your event.\r\n", "7bit", [("charset", "us-ascii")]),
            Leaf("text/calendar", reply, "quoted-printable", [("charset", "utf-8"), ("method", "REPLY"), ("name", "reply.ics")],
                 expect=cal_expect("text/calendar", "REPLY", "REPLY", ["room-booking-88@example.test"])),
        ])))

    tb_uid = "3f6a1f9c-1d2e-4b5a-9c8d-7e6f5a4b3c2d"
    tb = ical("REQUEST", tb_uid, prodid="-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN", seq=1,
              extra=["X-MOZ-LASTACK:20261120T090000Z", "X-MOZ-GENERATION:2"])
    case("thunderbird", "thunderbird-request", Msg(
        headers("Alice Example <alice@example.test>", ROOM, "Updated Invitation: Weekly sync @ Thu 3 Dec 2026 15:00 - 16:00 (CET)",
                "b2c3d4e5-0000-1111-2222-333344445555@example.test",
                extra=["User-Agent: Mozilla Thunderbird"]),
        Multi("mixed", [
            Multi("alternative", [
                Leaf("text/plain", PLAIN, "8bit", [("charset", "UTF-8")]),
                Leaf("text/calendar", tb, "8bit", [("charset", "UTF-8"), ("method", "REQUEST")],
                     expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [tb_uid]), label="c"),
            ]),
            Leaf("application/ics", tb, "base64", [("name", "invite.ics")],
                 disposition='attachment; filename="invite.ics"',
                 expect=dict(cal_expect("application/ics", None, "REQUEST", [tb_uid]), dup_of="c")),
        ])))

    tbr = ical("REPLY", "room-booking-99@example.test", organizer="mailto:room1@example.test",
               attendees=("mailto:bob@example.test",), partstat="TENTATIVE",
               prodid="-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN")
    case("thunderbird", "thunderbird-reply", Msg(
        headers("Bob <bob@example.test>", ROOM, "Tentatively Accepted: Offsite", "tb-reply-1@example.test",
                extra=["User-Agent: Mozilla Thunderbird"]),
        Multi("mixed", [
            Multi("alternative", [
                Leaf("text/plain", "Bob has tentatively accepted.\r\n", "8bit", [("charset", "UTF-8")]),
                Leaf("text/calendar", tbr, "8bit", [("charset", "UTF-8"), ("method", "REPLY")],
                     expect=cal_expect("text/calendar", "REPLY", "REPLY", ["room-booking-99@example.test"]), label="c"),
            ]),
            Leaf("application/ics", tbr, "base64", [("name", "invite.ics")],
                 disposition='attachment; filename="invite.ics"',
                 expect=dict(cal_expect("application/ics", None, "REPLY", ["room-booking-99@example.test"]), dup_of="c")),
        ])))

    inner = Msg(headers(ALICE, "dave@example.test", "Invitation: Weekly sync", "orig-invite-1@example.test"),
                Multi("mixed", [
                    Multi("alternative", [
                        Leaf("text/plain", PLAIN, "8bit", [("charset", "UTF-8")]),
                        Leaf("text/calendar", tb, "8bit", [("charset", "UTF-8"), ("method", "REQUEST")],
                             expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [tb_uid]), label="c"),
                    ]),
                    Leaf("application/ics", tb, "base64", [("name", "invite.ics")],
                         disposition='attachment; filename="invite.ics"',
                         expect=dict(cal_expect("application/ics", None, "REQUEST", [tb_uid]), dup_of="c")),
                ]))
    case("thunderbird", "thunderbird-forward-as-attachment", Msg(
        headers("Dave <dave@example.test>", ROOM, "Fwd: Invitation: Weekly sync", "fwd-attach-1@example.test",
                extra=["User-Agent: Mozilla Thunderbird"]),
        Multi("mixed", [
            Leaf("text/plain", "Can the room take this?\r\n", "7bit", [("charset", "UTF-8"), ("format", "flowed")]),
            Attached(inner),
        ])), sender={"from": "dave@example.test"})

    ev_uid = "20261120T093000Z-4242-1000-1000-0@workstation.example.test"
    ev = ical("REQUEST", ev_uid, prodid="-//Ximian//NONSGML Evolution Calendar//EN",
              start="DTSTART;TZID=/freeassociation.sourceforge.net/Europe/Berlin:20261203T150000",
              end="DTEND;TZID=/freeassociation.sourceforge.net/Europe/Berlin:20261203T160000",
              summary="Sprint planning; Q4, all teams", extra=["TRANSP:OPAQUE"])
    case("evolution", "evolution-request", Msg(
        headers("Alice Example <alice@example.test>", ROOM, "Sprint planning; Q4, all teams",
                "1a2b3c4d.camel@workstation.example.test", extra=["X-Mailer: Evolution 3.52.1"]),
        Multi("mixed", [
            Leaf("text/plain", "Sprint planning\r\n", "7bit", [("charset", '"UTF-8"')]),
            Leaf("text/calendar", ev, "8bit", [("charset", '"UTF-8"'), ("method", "REQUEST")],
                 disposition="inline",
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [ev_uid],
                                   contains=["SUMMARY:Sprint planning; Q4, all teams"])),
        ])))

    evr = ical("REPLY", "room-booking-55@example.test", organizer="mailto:room1@example.test",
               attendees=("mailto:carol@example.test",), partstat="ACCEPTED",
               prodid="-//Ximian//NONSGML Evolution Calendar//EN")
    case("evolution", "evolution-reply-attachment-disposition", Msg(
        headers("Carol <carol@example.test>", ROOM, "Meeting Information Accepted: Offsite", "ev-reply@workstation.example.test",
                extra=["X-Mailer: Evolution 3.52.1"]),
        Multi("mixed", [
            Leaf("text/plain", "Accepted\r\n", "7bit", [("charset", '"UTF-8"')]),
            Leaf("text/calendar", evr, "8bit", [("charset", '"UTF-8"'), ("method", "REPLY"), ("name", "meeting.ics")],
                 disposition='attachment; filename="meeting.ics"',
                 expect=cal_expect("text/calendar", "REPLY", "REPLY", ["room-booking-55@example.test"],
                                   file_name="meeting.ics")),
        ])))


# ================================================================ Proton, Zimbra

def proton_zimbra_cases():
    uid = "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9@proton.me"
    body = ical("REQUEST", uid, prodid="-//Proton AG//WebCalendar 5.0.50//EN")
    case("proton", "proton-request-lowercase-method", Msg(
        headers("Alice <alice@example.test>", ROOM, "Invitation for an event starting on December 3rd, 2026",
                "pm-invite-1@example.test"),
        Multi("mixed", [
            Leaf("text/html", HTML, "base64", [("charset", "utf-8")]),
            Leaf("text/calendar", body, "base64", [("method", "request"), ("name", '"invite.ics"')],
                 disposition='attachment; filename="invite.ics"',
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [uid], file_name="invite.ics")),
        ])))

    reply = ical("REPLY", "room-booking-66@example.test", organizer="mailto:room1@example.test",
                 attendees=("mailto:alice@example.test",), partstat="ACCEPTED",
                 prodid="-//Proton AG//WebCalendar 5.0.50//EN").replace("METHOD:REPLY", "METHOD:reply")
    case("proton", "proton-reply-lowercase", Msg(
        headers("Alice <alice@example.test>", ROOM, "Accepted: Offsite", "pm-reply-1@example.test"),
        Multi("mixed", [
            Leaf("text/plain", "Alice accepted.\r\n", "base64", [("charset", "utf-8")]),
            Leaf("text/calendar", reply, "base64", [("method", "reply"), ("name", '"invite.ics"')],
                 disposition='attachment; filename="invite.ics"',
                 expect=cal_expect("text/calendar", "REPLY", "REPLY", ["room-booking-66@example.test"])),
        ])))

    zuid = "8a2c1f3e-5b7d-4e9f-a1c3-e5f7a9b1c3d5"
    z = ical("REQUEST", zuid, prodid="Zimbra-Calendar-Provider", extra=["X-MICROSOFT-CDO-INTENDEDSTATUS:BUSY"])
    case("zimbra", "zimbra-request", Msg(
        headers("Alice <alice@example.test>", ROOM, "Weekly sync", "1234567.89.1763629200000.JavaMail.zimbra@example.test",
                extra=["X-Mailer: Zimbra 10.1.0_GA_4655", "Thread-Topic: Weekly sync", "Thread-Index: zC3kf8L2a9bcdE=="]),
        Multi("alternative", [
            Leaf("text/plain", PLAIN, "7bit", [("charset", "utf-8")]),
            Leaf("text/html", HTML, "7bit", [("charset", "utf-8")]),
            Leaf("text/calendar", z, "7bit", [("charset", "utf-8"), ("method", "REQUEST"), ("name", "meeting.ics")],
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [zuid])),
        ])))

    zc = ical("CANCEL", zuid, seq=1, prodid="Zimbra-Calendar-Provider", extra=["STATUS:CANCELLED"])
    case("zimbra", "zimbra-cancel", Msg(
        headers("Alice <alice@example.test>", ROOM, "Cancelled: Weekly sync", "7654321.98.1763629300000.JavaMail.zimbra@example.test",
                extra=["X-Mailer: Zimbra 10.1.0_GA_4655"]),
        Multi("alternative", [
            Leaf("text/plain", "Cancelled.\r\n", "7bit", [("charset", "utf-8")]),
            Leaf("text/calendar", zc, "7bit", [("charset", "utf-8"), ("method", "CANCEL"), ("name", "meeting.ics")],
                 expect=cal_expect("text/calendar", "CANCEL", "CANCEL", [zuid])),
        ])))


# ================================================================ forwards, bounces, auto-replies

def forward_dsn_auto_cases():
    uid = "enc-fwd-1@example.test"
    inner = Msg(headers(ALICE, "erin@example.test", "Invitation: Offsite", "orig-offsite@example.test"),
                Multi("alternative", [
                    Leaf("text/plain", PLAIN, "7bit"),
                    Leaf("text/calendar", ical("REQUEST", uid), "base64", [("charset", "utf-8"), ("method", "REQUEST")],
                         expect=cal_expect("text/calendar", "REQUEST", "REQUEST", [uid])),
                ]))
    middle = Msg(headers("Erin <erin@example.test>", "dave@example.test", "Fwd: Invitation: Offsite", "fwd-mid@example.test"),
                 Multi("mixed", [Leaf("text/plain", "fyi\r\n", "7bit"), Attached(inner)]))
    case("forward", "forward-nested-base64-rfc822", Msg(
        headers("Dave <dave@example.test>", ROOM, "Fwd: Fwd: Invitation: Offsite", "fwd-outer@example.test"),
        Multi("mixed", [Leaf("text/plain", "see below\r\n", "7bit"), Attached(middle, cte="base64")])),
        sender={"from": "dave@example.test", "message_id": "fwd-outer@example.test"},
        note="a forward of a forward; the outer message/rfc822 is base64-encoded")

    # Our own reply bounced: Postfix DSN with the returned message.
    ours = ical("REPLY", "bounce-uid-1@example.test", organizer="mailto:nobody@example.test",
                attendees=("mailto:room1@example.test",), partstat="ACCEPTED", prodid="-//imipd//EN")
    returned = Msg(headers("Room 1 <room1@example.test>", "nobody@example.test", "Accepted: Weekly sync",
                           "imipd-5f1e2d3c4b5a69788796a5b4c3d2e1f0@example.test",
                           extra=["Auto-Submitted: auto-replied", "X-Auto-Response-Suppress: All"]),
                   Multi("mixed", [
                       Multi("alternative", [
                           Leaf("text/plain", "Room 1 accepted: Weekly sync\r\n", "7bit"),
                           Leaf("text/calendar", ours, "base64", [("charset", "UTF-8"), ("method", "REPLY")],
                                expect=cal_expect("text/calendar", "REPLY", "REPLY", ["bounce-uid-1@example.test"]), label="c"),
                       ]),
                       Leaf("application/ics", ours, "base64", [("name", "invite.ics")], disposition='attachment; filename="invite.ics"',
                            expect=dict(cal_expect("application/ics", None, "REPLY", ["bounce-uid-1@example.test"]), dup_of="c")),
                   ]))
    status = ("Reporting-MTA: dns; mx.example.test\r\nX-Postfix-Queue-ID: 4XyZ12abc\r\nX-Postfix-Sender: rfc822; room1@example.test\r\n"
              "Arrival-Date: Fri, 20 Nov 2026 10:00:01 +0100 (CET)\r\n\r\n"
              "Final-Recipient: rfc822; nobody@example.test\r\nOriginal-Recipient: rfc822;nobody@example.test\r\n"
              "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mail.example.test\r\n"
              "Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.test>: Recipient address\r\n    rejected: User unknown in virtual mailbox table\r\n")
    case("dsn", "postfix-bounce-of-reply", Msg(
        headers("MAILER-DAEMON@mx.example.test (Mail Delivery System)", "room1@example.test",
                "Undelivered Mail Returned to Sender", "20261120090002.4XyZ12abc@mx.example.test",
                extra=["Auto-Submitted: auto-replied", "Return-Path: <>"]),
        Multi("report", [
            Leaf("text/plain", "I'm sorry to have to inform you that your message could not\r\nbe delivered.\r\n", "7bit",
                 [("charset", "us-ascii")], disposition="inline", headers=["Content-Description: Notification"]),
            Leaf("message/delivery-status", status, None, headers=["Content-Description: Delivery report"]),
            Attached(returned),
        ], params=[("report-type", "delivery-status")])),
        sender={"return_path": "", "auto_submitted": "auto-replied"},
        report={"reporting_mta": "mx.example.test",
                "original_message_id": "imipd-5f1e2d3c4b5a69788796a5b4c3d2e1f0@example.test",
                "original_subject": "Accepted: Weekly sync",
                "recipients": [{"final_recipient": "nobody@example.test", "original_recipient": "nobody@example.test",
                                "action": "failed", "status": "5.1.1", "remote_mta": "mail.example.test",
                                "diagnostic": "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table"}]},
        note="the calendar inside the returned message is reported as forwarded; the delivery report names our Message-ID")

    ex_status = ("Reporting-MTA: dns;EXCH01.example.test\r\nReceived-From-MTA: dns;EXCH02.example.test\r\n"
                 "Arrival-Date: Fri, 20 Nov 2026 09:00:01 +0000\r\n\r\n"
                 "Final-Recipient: rfc822;carol@example.test\r\nAction: delayed\r\nStatus: 4.4.7\r\n"
                 "X-Display-Name: Carol\r\n")
    ex_headers = ("From: Room 1 <room1@example.test>\r\nTo: carol@example.test\r\nSubject: Declined: Offsite\r\n"
                  "Message-ID: <imipd-aa55@example.test>\r\nAuto-Submitted: auto-replied\r\n")
    case("dsn", "exchange-delay-notification-headers-only", Msg(
        headers("Microsoft Outlook <postmaster@example.test>", "room1@example.test", "Delivery delayed:Declined: Offsite",
                "delay-1@EXCH01.example.test", extra=["Auto-Submitted: auto-replied", "X-MS-Exchange-Message-Is-Ndr:"]),
        Multi("report", [
            Multi("alternative", [Leaf("text/plain", "Delivery is delayed.\r\n", "quoted-printable", [("charset", "us-ascii")]),
                                  Leaf("text/html", "<p>Delivery is delayed.</p>\r\n", "quoted-printable", [("charset", "us-ascii")])]),
            Leaf("message/delivery-status", ex_status, "7bit"),
            Leaf("text/rfc822-headers", ex_headers, "7bit"),
        ], params=[("report-type", "delivery-status")])),
        report={"original_message_id": "imipd-aa55@example.test", "original_subject": "Declined: Offsite",
                "recipients": [{"final_recipient": "carol@example.test", "action": "delayed", "status": "4.4.7"}]})

    case("autoreply", "vacation-precedence-bulk", Msg(
        headers("Carol <carol@example.test>", ROOM, "Out of office (Re: Accepted: Offsite)", "vac-1@example.test",
                extra=["Precedence: bulk", "Auto-Submitted: auto-replied (vacation)",
                       "In-Reply-To: <imipd-77@example.test>"]),
        Leaf("text/plain", "Back on Monday.\r\n", "7bit")),
        sender={"precedence": "bulk", "auto_submitted": "auto-replied", "in_reply_to": ["imipd-77@example.test"]})


# ================================================================ vCalendar and encodings

def vcal_encoding_cases():
    vcs = ("BEGIN:VCALENDAR\r\nVERSION:1.0\r\nPRODID:-//Palm Inc.//Palm Desktop 4.1.4//EN\r\n"
           "BEGIN:VEVENT\r\nUID:palm-1234567@example.test\r\nDTSTART:20261203T140000Z\r\nDTEND:20261203T150000Z\r\n"
           "SUMMARY;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:R=E9union d'=E9quipe\r\n"
           "ATTENDEE;ROLE=ORGANIZER;STATUS=CONFIRMED:Alice <alice@example.test>\r\n"
           "ATTENDEE;ROLE=ATTENDEE;STATUS=NEEDS ACTION;RSVP=YES;EXPECT=REQUIRE:room1@example.test\r\n"
           "DCREATED:20261120T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    case("vcalendar", "palm-desktop-vcs-octet-stream", Msg(
        headers("Alice <alice@example.test>", "room1@example.test", "Meeting", "palm-1@example.test",
                extra=["X-Mailer: Palm Desktop 4.1.4"]),
        Multi("mixed", [
            Leaf("text/plain", "Please come.\r\n", "7bit"),
            Leaf("application/octet-stream", vcs, "base64", [("name", '"Meeting.VCS"')],
                 disposition='attachment; filename="Meeting.VCS"',
                 expect=cal_expect("application/octet-stream", None, None, ["palm-1234567@example.test"],
                                   vcal=True, file_name="Meeting.VCS")),
        ])))

    lotus = ("BEGIN:VCALENDAR\r\nVERSION:1.0\r\nPRODID:-//Lotus Development Corporation//NONSGML Notes 6.5//EN\r\n"
             "X-METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:lotus-42@example.test\r\nSEQUENCE:1\r\n"
             "DTSTART:20261203T140000Z\r\nDTEND:20261203T150000Z\r\nSUMMARY:Planung f\xfcr 2027\r\n"
             "X-ORGANIZER:MAILTO:alice@example.test\r\nATTENDEE;RSVP=YES:MAILTO:room1@example.test\r\n"
             "END:VEVENT\r\nEND:VCALENDAR\r\n").encode("cp1252")
    case("vcalendar", "lotus-notes-x-vcalendar-8bit-latin1", Msg(
        headers("Alice <alice@example.test>", "room1@example.test", "Einladung: Planung", "lotus-1@example.test",
                extra=["X-Mailer: Lotus Notes Release 6.5"]),
        Multi("mixed", [
            Leaf("text/plain", "Einladung\r\n", "7bit"),
            Leaf("TEXT/X-VCALENDAR", lotus, "8bit", [("charset", "ISO-8859-1"), ("name", "invite.vcs")],
                 expect=cal_expect("text/x-vcalendar", None, "REQUEST", ["lotus-42@example.test"], vcal=True,
                                   contains=["SUMMARY:Planung für 2027"])),
        ])))

    # A UTF-8 character split by a fold at the octet level, inside base64 (mail-parser 0.11
    # would decode it lossily).
    split = ("BEGIN:VCALENDAR\r\nPRODID:-//Example//Cal//EN\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
             "UID:split-utf8-1@example.test\r\nDTSTAMP:20261120T090000Z\r\nDTSTART:20261203T140000Z\r\n"
             "DTEND:20261203T150000Z\r\n").encode() + \
        b"SUMMARY:Besprechung mit Frau M\xc3\r\n \xbcller\r\n" + \
        ("ORGANIZER:mailto:alice@example.test\r\nATTENDEE:mailto:room1@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    case("encoding", "utf8-split-by-fold-base64", Msg(
        headers(ALICE, ROOM, "Besprechung", "split-1@example.test"),
        Multi("alternative", [
            Leaf("text/plain", "Besprechung\r\n", "7bit"),
            Leaf("text/calendar", split, "base64", [("charset", "UTF-8"), ("method", "REQUEST")],
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", ["split-utf8-1@example.test"],
                                   contains=["SUMMARY:Besprechung mit Frau Müller"])),
        ])))

    latin = ical("REQUEST", "latin1-qp@example.test", summary="Réunion équipe").encode("iso-8859-1")
    case("encoding", "iso-8859-1-quoted-printable", Msg(
        headers(ALICE, ROOM, "=?ISO-8859-1?Q?R=E9union_=E9quipe?=", "latin1-1@example.test"),
        Multi("alternative", [
            Leaf("text/plain", "Reunion\r\n", "7bit"),
            Leaf("text/calendar", latin, "quoted-printable", [("charset", "ISO-8859-1"), ("method", "REQUEST")],
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", ["latin1-qp@example.test"],
                                   contains=["SUMMARY:Réunion équipe"])),
        ])), sender={"subject": "Réunion équipe"})

    win = ical("REQUEST", "cp1252-1@example.test", summary="Quartal – “Plan”").encode("cp1252")
    case("encoding", "windows-1252-8bit", Msg(
        headers(ALICE, ROOM, "Plan", "cp1252-1@example.test"),
        Leaf("text/calendar", win, "8bit", [("charset", "windows-1252"), ("method", "REQUEST")],
             expect=cal_expect("text/calendar", "REQUEST", "REQUEST", ["cp1252-1@example.test"],
                               contains=["SUMMARY:Quartal – “Plan”"]))))

    a = ical("REQUEST", "distinct-a@example.test", summary="Morning")
    b = ical("REQUEST", "distinct-b@example.test", summary="Afternoon")
    case("misc", "two-distinct-calendar-attachments", Msg(
        headers(ALICE, ROOM, "Two bookings", "two-1@example.test"),
        Multi("mixed", [
            Leaf("text/plain", "Two bookings.\r\n", "7bit"),
            Leaf("text/calendar", a, "base64", [("charset", "utf-8"), ("method", "REQUEST"), ("name", "morning.ics")],
                 disposition='attachment; filename="morning.ics"',
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", ["distinct-a@example.test"])),
            Leaf("text/calendar", b, "base64", [("charset", "utf-8"), ("method", "REQUEST"), ("name", "afternoon.ics")],
                 disposition='attachment; filename="afternoon.ics"',
                 expect=cal_expect("text/calendar", "REQUEST", "REQUEST", ["distinct-b@example.test"])),
        ])))

    mm = ical("CANCEL", "mismatch-1@example.test", seq=2)
    case("misc", "method-param-body-mismatch", Msg(
        headers(ALICE, ROOM, "Weekly sync", "mismatch-1@example.test"),
        Multi("alternative", [
            Leaf("text/plain", PLAIN, "7bit"),
            Leaf("text/calendar", mm, "7bit", [("charset", "utf-8"), ("method", "REQUEST")],
                 expect=cal_expect("text/calendar", "REQUEST", "CANCEL", ["mismatch-1@example.test"])),
        ])))

    nm = ical("REQUEST", "no-method-param@example.test")
    case("misc", "simple-mailer-no-method-param", Msg(
        headers(ALICE, ROOM, "Weekly sync", "simple-1@example.test", extra=["X-Mailer: simple-java-mail"]),
        Leaf("text/calendar", nm, "quoted-printable", [("charset", "UTF-8")],
             expect=cal_expect("text/calendar", None, "REQUEST", ["no-method-param@example.test"]))))

    pub = ical("PUBLISH", "octet-ics-1@example.test", organizer=None, attendees=())
    case("misc", "octet-stream-ics-publish", Msg(
        headers(ALICE, ROOM, "Our schedule", "octet-1@example.test"),
        Multi("mixed", [
            Leaf("text/plain", "Attached.\r\n", "7bit"),
            Leaf("application/octet-stream", pub, "base64", [("name", "schedule.ics")],
                 disposition='attachment; filename="schedule.ics"',
                 expect=cal_expect("application/octet-stream", None, "PUBLISH", ["octet-ics-1@example.test"],
                                   file_name="schedule.ics")),
        ])))

    case("misc", "ics-named-attachment-without-calendar", Msg(
        headers(ALICE, ROOM, "Oops", "garbage-1@example.test"),
        Multi("mixed", [
            Leaf("text/plain", "Attached.\r\n", "7bit"),
            Leaf("application/octet-stream", b"\x89PNG\r\n\x1a\n not a calendar", "base64", [("name", "photo.ics")],
                 disposition='attachment; filename="photo.ics"'),
        ])), problems=[{"path": "2", "code": "not_a_calendar"}])

    case("misc", "plain-mail-no-calendar", Msg(
        headers(ALICE, ROOM, "Lunch?", "plain-1@example.test"),
        Leaf("text/plain", "Lunch at noon?\r\n", "7bit")), sender={"subject": "Lunch?"})


def main():
    outlook_cases()
    gmail_cases()
    apple_mozilla_gnome_cases()
    proton_zimbra_cases()
    forward_dsn_auto_cases()
    vcal_encoding_cases()
    names = set()
    for vendor, name, msg, sender, problems, report, note in CASES:
        assert name not in names, name
        names.add(name)
        folder = os.path.join(ROOT, vendor)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name + ".eml"), "wb") as f:
            f.write(render(msg))
        expected = {"parts": expected_parts(msg), "problems": problems, "delivery_report": report}
        if sender:
            expected["sender"] = sender
        if note:
            expected["note"] = note
        with open(os.path.join(folder, name + ".expected.json"), "w", encoding="utf-8") as f:
            json.dump(expected, f, indent=2, ensure_ascii=False)
            f.write("\n")
    print(f"{len(CASES)} messages written")


if __name__ == "__main__":
    main()
