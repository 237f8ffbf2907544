"""Real clients of imipd's published calendars, for tests/publish_http.rs.

    client.py feed URL          subscribes to calendar.ics with urllib, parses it with the
                                `icalendar` package and prints its VEVENTs as JSON
    client.py page URL PNG      loads calendar.html in headless Chromium (DOM dump and a
                                screenshot into PNG), parses its microformats with mf2py and
                                prints the h-events as JSON

Times are printed as UTC ISO 8601 (`2027-01-05T09:00:00Z`), dates as `2027-01-05`.
"""

import datetime
import json
import subprocess
import sys
import urllib.request


def utc(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def feed(url):
    import icalendar

    with urllib.request.urlopen(url, timeout=20) as response:
        content_type = response.headers.get("Content-Type", "")
        body = response.read()
    calendar = icalendar.Calendar.from_ical(body)
    events = []
    for event in calendar.walk("VEVENT"):
        events.append(
            {
                "uid": str(event.get("UID")),
                "summary": str(event.get("SUMMARY")) if event.get("SUMMARY") else None,
                "start": utc(event.decoded("DTSTART")),
                "end": utc(event.decoded("DTEND")) if event.get("DTEND") else None,
                "status": str(event.get("STATUS")) if event.get("STATUS") else None,
                "rrule": event.get("RRULE").to_ical().decode() if event.get("RRULE") else None,
            }
        )
    print(
        json.dumps(
            {
                "content_type": content_type,
                "method": str(calendar.get("METHOD")),
                "events": events,
            }
        )
    )


def chromium(*args):
    return subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            *args,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def page(url, png):
    import mf2py

    dom = chromium("--dump-dom", url).stdout.decode("utf-8")
    chromium(f"--screenshot={png}", "--window-size=900,1000", url)
    parsed = mf2py.parse(doc=dom)
    events = []

    def walk(items):
        for item in items:
            if "h-event" in item.get("type", []):
                props = item.get("properties", {})
                first = lambda key: (props.get(key) or [None])[0]
                events.append(
                    {
                        "name": first("name"),
                        "start": utc(datetime.datetime.fromisoformat(first("start"))),
                        "end": utc(datetime.datetime.fromisoformat(first("end"))),
                        "start_as_written": first("start"),
                        "location": first("location"),
                        "uid": first("uid"),
                    }
                )
            walk(item.get("children", []))

    walk(parsed.get("items", []))
    print(json.dumps({"events": events, "title_in_dom": "<h1>" in dom}))


if __name__ == "__main__":
    if sys.argv[1] == "feed":
        feed(sys.argv[2])
    elif sys.argv[1] == "page":
        page(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
