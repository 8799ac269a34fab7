#!/usr/bin/env python3
"""Convert uap-core's regexes.yaml into regexes.json, which the tracker embeds.

The tracker already depends on serde_json; converting once here keeps a YAML parser out of
the Rust build. Run it again after replacing regexes.yaml with a newer release:

    python3 core/data/uap-core/convert.py

Needs PyYAML (Debian: python3-yaml; PyPI: PyYAML). Every value is written as a JSON string
(YAML 1.1 would read an unquoted `8` or `yes` as a number or a boolean; ua-parser wants strings).
"""

import json
import pathlib

import yaml

HERE = pathlib.Path(__file__).resolve().parent
SECTIONS = ("user_agent_parsers", "os_parsers", "device_parsers")


def main() -> None:
    with open(HERE / "regexes.yaml", encoding="utf-8") as source:
        data = yaml.safe_load(source)
    out = {}
    for section in SECTIONS:
        parsers = []
        for parser in data[section]:
            parsers.append({key: str(value) for key, value in parser.items()})
        out[section] = parsers
    with open(HERE / "regexes.json", "w", encoding="utf-8") as target:
        # One parser per line: small and still readable in a diff.
        target.write("{\n")
        for i, section in enumerate(SECTIONS):
            target.write(f' "{section}": [\n')
            rows = ["  " + json.dumps(p, ensure_ascii=False) for p in out[section]]
            target.write(",\n".join(rows))
            target.write("\n ]" + ("," if i + 1 < len(SECTIONS) else "") + "\n")
        target.write("}\n")
    counts = ", ".join(f"{s}={len(out[s])}" for s in SECTIONS)
    print(f"wrote {HERE / 'regexes.json'} ({counts})")


if __name__ == "__main__":
    main()
