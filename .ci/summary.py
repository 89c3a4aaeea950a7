"""Add up pytest's JUnit reports into one closing line: 'N passed, N failed, N skipped'."""
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for f in sys.argv[1:]:
    root = ET.parse(f).getroot()
    for s in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        t, fl, er, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        passed += t - fl - er - sk; failed += fl + er; skipped += sk
print(f"summary: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or not passed else 0)
