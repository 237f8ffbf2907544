"""Python icalendar's side of the parser comparison (scripts/bench-parsers): parses every
file named on the command line with icalendar.Calendar.from_ical(..., multiple=True), over
and over for IMIPD_BENCH_SECS seconds (default 3), and prints the same JSON line as
examples/bench_parsers.rs."""
import json
import os
import sys
import time

import icalendar


def parse(data):
    return icalendar.Calendar.from_ical(data, multiple=True)


def main():
    files = [open(p, "rb").read() for p in sys.argv[1:]]
    secs = float(os.environ.get("IMIPD_BENCH_SECS", "3"))
    failed = 0
    for data in files:
        try:
            parse(data)
        except Exception:
            failed += 1
    objects = rounds = size = 0
    start = time.perf_counter()
    while time.perf_counter() - start < secs:
        for data in files:
            try:
                objects += len(parse(data))
            except Exception:
                pass
            size += len(data)
        rounds += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "parser": "python icalendar %s (Calendar.from_ical)" % icalendar.__version__,
        "files": len(files), "failed": failed, "rounds": rounds,
        "objects_per_s": round(objects / elapsed, 1),
        "mib_per_s": round(size / elapsed / 1048576.0, 3),
    }))


main()
