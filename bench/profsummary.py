"""``python -m bench.profsummary FILE...``: where the server's time went, from py-spy raw stacks.

``python -m bench --profile DIR`` records each scenario with ``py-spy record --format raw``
(collapsed stacks, idle threads excluded); this prints, per thread, the share of samples spent
inside each function (inclusive) and on top of the stack (self), so a MISS can be explained.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]*)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``func (path/file.py:12)`` -> ``func (path/file.py)``: lines merged per function."""
    m = _FRAME.match(frame.strip())
    return f"{m['func']} ({m['file']})" if m else frame.strip()


def summarise(path: Path, top: int) -> str:
    per_thread: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        count = int(m["count"])
        frames = m["stack"].split(";")
        thread = frames[0].split(" ", 1)[-1] if frames[0].startswith("thread") else "?"
        names = [frame_name(f) for f in frames[1:]] if frames[0].startswith("thread") else \
            [frame_name(f) for f in frames]
        total += count
        per_thread[thread] += count
        for name in set(names):
            inclusive[name] += count
        if names:
            own[names[-1]] += count
    if not total:
        return f"{path.name}: no samples"
    out = [f"== {path.name}: {total} samples"]
    out.append("threads: " + ", ".join(f"{t} {100 * c / total:.0f}%"
                                       for t, c in per_thread.most_common()))
    out.append(f"-- top {top} self")
    out += [f"{100 * c / total:5.1f}%  {n}" for n, c in own.most_common(top)]
    out.append(f"-- top {top} inclusive (cityos, starlette, uvicorn, sqlite, asyncpg frames)")
    keep = [(n, c) for n, c in inclusive.most_common()
            if any(k in n for k in ("cityos/", "starlette/", "uvicorn/", "asyncpg", "sqlite",
                                    "orjson", "shapely", "httptools", "json"))]
    out += [f"{100 * c / total:5.1f}%  {n}" for n, c in keep[:top]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profsummary")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        print(summarise(path, args.top))
        print()


if __name__ == "__main__":
    main()
