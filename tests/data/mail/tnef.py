"""A minimal MS-OXTNEF writer, used by make_corpus.py to build winmail.dat files.

It writes exactly what MS-OXTNEF 2.1.3 specifies: the signature 0x223E9F78, a legacy key, then
attribute records `level (1 byte), id (4, LE), length (4, LE), data, checksum (2, LE: the sum of
the data bytes mod 65536)`. attMsgProps (0x00069003) and attRecipTable (0x00069004) carry MAPI
property lists (MS-OXTNEF 2.1.3.4): a 4-byte count, then per property its type and id (2 bytes
each, LE), for named properties (id >= 0x8000) the property set GUID (16 bytes), the kind
(0 = numeric id, 1 = name) and the id or name, then the value: fixed-size values padded to a
multiple of 4 bytes, variable-size values (and every multi-valued property) as a 4-byte value
count followed by per value a 4-byte length, the bytes, and zero padding to 4 bytes.

Written independently of imipd's Rust reader (src/mail/tnef.rs) from the specification, so the
golden tests check the reader against the spec, not against itself.
"""

import struct
import uuid

SIGNATURE = 0x223E9F78

# Attribute ids (MS-OXTNEF 2.1.3.3).
ATT_TNEF_VERSION = 0x00089006
ATT_OEM_CODEPAGE = 0x00069007
ATT_MESSAGE_CLASS = 0x00078008
ATT_SUBJECT = 0x00018004
ATT_BODY = 0x0002800C
ATT_MSG_PROPS = 0x00069003
ATT_RECIP_TABLE = 0x00069004
ATT_ATTACH_RENDDATA = 0x00069002
ATT_ATTACH_DATA = 0x0006800F
ATT_ATTACH_TITLE = 0x00018010

# MAPI property types.
PT_I2, PT_LONG, PT_BOOLEAN, PT_SYSTIME, PT_STRING8, PT_UNICODE, PT_BINARY = (
    0x0002, 0x0003, 0x000B, 0x0040, 0x001E, 0x001F, 0x0102)

# GUIDs in their on-the-wire (little-endian) form.
PSETID_MEETING = uuid.UUID("6ED8DA90-450B-101B-98DA-00AA003F1305").bytes_le
PSETID_APPOINTMENT = uuid.UUID("00062002-0000-0000-C000-000000000046").bytes_le

# FILETIME epoch difference in seconds.
EPOCH_DIFF = 11644473600


def filetime(unix_seconds):
    return (unix_seconds + EPOCH_DIFF) * 10_000_000


def attribute(level, att_id, data):
    return (struct.pack("<BII", level, att_id, len(data)) + data
            + struct.pack("<H", sum(data) & 0xFFFF))


def pad4(data):
    return data + b"\0" * ((4 - len(data) % 4) % 4)


def value(ptype, v):
    if ptype in (PT_I2, PT_BOOLEAN):
        return struct.pack("<hH", int(v), 0)
    if ptype == PT_LONG:
        return struct.pack("<i", v)
    if ptype == PT_SYSTIME:
        return struct.pack("<Q", filetime(v))
    if ptype == PT_UNICODE:
        raw = (v + "\0").encode("utf-16-le")
    elif ptype == PT_STRING8:
        raw = v.encode("cp1252") + b"\0"
    elif ptype == PT_BINARY:
        raw = v
    else:
        raise ValueError(ptype)
    return struct.pack("<II", 1, len(raw)) + pad4(raw)


def prop(ptype, pid, v, guid=None, name=None):
    """One property: a tag id (< 0x8000), or a named property with guid and (id or name)."""
    out = struct.pack("<HH", ptype, pid)
    if pid >= 0x8000:
        out += guid
        if name is None:
            out += struct.pack("<II", 0, pid_lid(pid))
        else:
            raw = (name + "\0").encode("utf-16-le")
            out += struct.pack("<II", 1, len(raw)) + pad4(raw)
    return out + value(ptype, v)


_LIDS = {}


def named(ptype, guid, lid, v, slot):
    """A numeric named property: `slot` is the 0x8000+ id it is mapped to in this message."""
    _LIDS[slot] = lid
    return prop(ptype, slot, v, guid=guid)


def pid_lid(slot):
    return _LIDS[slot]


def prop_list(props):
    return struct.pack("<I", len(props)) + b"".join(props)


def tnef(attributes):
    return struct.pack("<IH", SIGNATURE, 0x0001) + b"".join(attributes)


def global_object_id(creation_unix, serial, foreign_uid=None):
    """PidLidGlobalObjectId (MS-OXOCAL 2.2.1.27): class id, instance date (0), creation time,
    8 reserved bytes, data size, data."""
    class_id = bytes.fromhex("040000008200E00074C5B7101A82E008")
    if foreign_uid is None:
        data = bytes.fromhex("0000000000000000") + struct.pack("<Q", serial)
    else:
        data = b"vCal-Uid" + struct.pack("<I", 1) + foreign_uid.encode() + b"\0"
    return (class_id + b"\0\0\0\0" + struct.pack("<Q", filetime(creation_unix))
            + b"\0" * 8 + struct.pack("<I", len(data)) + data)


def meeting(message_class, subject, start, end, organizer, organizer_name, attendees,
            goid, sequence=0, location=None, recurring=False, all_day=False, stamp=None):
    """A winmail.dat holding one meeting message. attendees: (name, smtp, recipient type)."""
    props = [
        prop(PT_UNICODE, 0x001A, message_class),
        prop(PT_UNICODE, 0x0037, subject),
        prop(PT_UNICODE, 0x0042, organizer_name),
        prop(PT_UNICODE, 0x5D02, organizer),
        prop(PT_SYSTIME, 0x3008, stamp or start),
        prop(PT_SYSTIME, 0x0060, start),
        prop(PT_SYSTIME, 0x0061, end),
        named(PT_BINARY, PSETID_MEETING, 0x0003, goid, 0x8001),
        named(PT_BINARY, PSETID_MEETING, 0x0023, goid, 0x8002),
        named(PT_SYSTIME, PSETID_APPOINTMENT, 0x820D, start, 0x8003),
        named(PT_SYSTIME, PSETID_APPOINTMENT, 0x820E, end, 0x8004),
        named(PT_LONG, PSETID_APPOINTMENT, 0x8201, sequence, 0x8005),
        named(PT_BOOLEAN, PSETID_APPOINTMENT, 0x8223, recurring, 0x8006),
        named(PT_BOOLEAN, PSETID_APPOINTMENT, 0x8215, all_day, 0x8007),
        # A named property by string name, as Outlook writes for its internet headers.
        prop(PT_UNICODE, 0x8008, "imipd-test", guid=PSETID_APPOINTMENT, name="x-imipd-note"),
    ]
    if location is not None:
        props.append(named(PT_UNICODE, PSETID_APPOINTMENT, 0x8208, location, 0x8009))
    rows = [prop_list([
        prop(PT_UNICODE, 0x3001, name),
        prop(PT_STRING8, 0x3002, "SMTP"),
        prop(PT_UNICODE, 0x3003, smtp),
        prop(PT_LONG, 0x0C15, rtype),
    ]) for (name, smtp, rtype) in attendees]
    return tnef([
        attribute(1, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000)),
        attribute(1, ATT_OEM_CODEPAGE, struct.pack("<II", 1252, 0)),
        attribute(1, ATT_MESSAGE_CLASS, b"IPM.Microsoft Schedule.MtgReq\0"),
        attribute(1, ATT_SUBJECT, subject.encode("cp1252") + b"\0"),
        attribute(1, ATT_MSG_PROPS, prop_list(props)),
        attribute(1, ATT_RECIP_TABLE, struct.pack("<I", len(rows)) + b"".join(rows)),
    ])


def rich_text_mail(subject):
    """A winmail.dat of an ordinary rich-text mail with one file attachment (no meeting)."""
    return tnef([
        attribute(1, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000)),
        attribute(1, ATT_MESSAGE_CLASS, b"IPM.Note\0"),
        attribute(1, ATT_SUBJECT, subject.encode("cp1252") + b"\0"),
        attribute(1, ATT_MSG_PROPS, prop_list([prop(PT_UNICODE, 0x001A, "IPM.Note")])),
        attribute(2, ATT_ATTACH_RENDDATA, struct.pack("<HIIHHI", 1, 0xFFFFFFFF, 0, 0, 0, 0)),
        attribute(2, ATT_ATTACH_TITLE, b"notes.txt\0"),
        attribute(2, ATT_ATTACH_DATA, b"agenda: none\r\n"),
    ])
