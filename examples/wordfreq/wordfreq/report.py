"""Formatting the result: runs in a separate process started with subprocess."""

import json
import sys


def format_table(pairs, width=12):
    lines = []
    for word, count in pairs:
        lines.append(f"{word:<{width}} {count:>5}")
    return "\n".join(lines)


def main():
    pairs = json.load(sys.stdin)
    if not pairs:
        print("no words found")
        return 1
    print(format_table(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
