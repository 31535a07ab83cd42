"""What scripts/test prints at the end: each pass (which tests ran where,
how many, how long) and the slowest tests of the run, from the JUnit XML
files the passes wrote.

    python -m tests.summary RESULTS.xml...
"""

import sys
import xml.etree.ElementTree as ET

SLOWEST = 20


def main(paths: list[str]) -> None:
    passes, cases = [], []
    for path in paths:
        try:
            suite = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            continue  # a pass that did not get to write its results
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        name = suite.get("name")
        counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
        passes.append((name, counts, float(suite.get("time", 0))))
        for case in suite.iter("testcase"):
            # (xdist names a grouped test name@group)
            name_only = case.get("name", "").split("@")[0]
            test = f"{case.get('classname', '').replace('.', '/')}.py::{name_only}"
            cases.append((float(case.get("time", 0)), name, test))
    print("\nscripts/test, pass by pass:")
    for name, counts, seconds in passes:
        failed = counts["failures"] + counts["errors"]
        ran = counts["tests"] - counts["skipped"]
        print(f"  {name:16} {ran:4d} ran  {failed:3d} failed  {seconds:7.0f} s")
    print(f"\nThe {SLOWEST} slowest tests (setup, call and teardown):")
    for seconds, name, test in sorted(cases, reverse=True)[:SLOWEST]:
        print(f"  {seconds:6.1f} s  {name:16} {test}")


if __name__ == "__main__":
    main(sys.argv[1:])
