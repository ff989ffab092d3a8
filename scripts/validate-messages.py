#!/usr/bin/python3
"""Validates telemetry bodies against the message format's JSON Schema.

Usage: validate-messages.py SCHEMA BODIES.jsonl

BODIES.jsonl holds one message body per line (blank lines are skipped). Exits 0 when every
body is valid JSON and valid against SCHEMA; otherwise prints the first invalid body's line
number, why it is invalid and where (a JSON path), and the body itself (shortened), and
exits 1. Exits 2 on a usage error, a missing file, an invalid schema or a missing jsonschema
module (Debian: apt-get install python3-jsonschema; run with /usr/bin/python3).
"""
import json
import sys


def shorten(text, limit=600):
    return text if len(text) <= limit else text[:limit] + "... (%d bytes)" % len(text)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        import jsonschema
    except ImportError:
        print("validate-messages: the jsonschema module is missing "
              "(apt-get install python3-jsonschema; run with /usr/bin/python3)", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            schema = json.load(f)
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        print("validate-messages: bad schema %s: %s" % (argv[1], e), file=sys.stderr)
        return 2
    validator = validator_class(schema)
    try:
        lines = open(argv[2], encoding="utf-8").read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        print("validate-messages: cannot read %s: %s" % (argv[2], e), file=sys.stderr)
        return 2
    count = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except ValueError as e:
            print("message %d is not JSON: %s\n  body: %s" % (number, e, shorten(line)))
            return 1
        error = jsonschema.exceptions.best_match(validator.iter_errors(body))
        if error is not None:
            path = "$" + "".join("[%s]" % json.dumps(p) for p in error.absolute_path)
            print("message %d is invalid at %s: %s\n  body: %s" %
                  (number, path, shorten(error.message, 300), shorten(line)))
            return 1
        count += 1
    print("validate-messages: %d valid" % count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
