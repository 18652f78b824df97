"""Where a Go program's CPU goes, from a pprof CPU profile (Caddy's admin API: /debug/pprof/profile), without Go's
toolchain: the gzipped protobuf (github.com/google/pprof proto/profile.proto) decoded here, then the functions
with the most flat and cumulative CPU time, and the share of a few groups (TLS, network system calls, garbage
collection and allocation, the reverse proxy, HTTP parsing).

    .venv/bin/python bench/pprof_top.py cpu.pb.gz [--top 25]

Fields used (profile.proto): Profile 1 sample_type, 2 sample, 4 location, 5 function, 6 string_table;
ValueType 1 type, 2 unit; Sample 1 location_id, 2 value; Location 1 id, 4 line; Line 1 function_id;
Function 1 id, 2 name. A sample's first location is the leaf; a location's first line the innermost inlined call.
"""

from __future__ import annotations

import argparse
import gzip
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# A function counts in a group when its name starts with one of the prefixes (cumulative: once per sample).
GROUPS: dict[str, tuple[str, ...]] = {
    "TLS (crypto/tls, ciphers)": ("crypto/",),
    "network system calls (read, write, epoll)": ("syscall.", "internal/poll.", "runtime.netpoll"),
    "garbage collection": (
        "runtime.gcBgMarkWorker",
        "runtime.gcAssistAlloc",
        "runtime.bgsweep",
        "runtime.bgscavenge",
    ),
    "allocation (mallocgc)": ("runtime.mallocgc",),
    "reverse proxy (Caddy)": ("github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy.",),
    "HTTP/1 server (net/http)": (
        "net/http.(*conn).readRequest",
        "net/http.(*response)",
        "net/http.(*chunkWriter)",
    ),
    "HTTP/1 client transport (net/http)": ("net/http.(*Transport)", "net/http.(*persistConn)"),
    "Caddy's route, matchers, replacer, headers": (
        "github.com/caddyserver/caddy/v2/modules/caddyhttp.",
        "github.com/caddyserver/caddy/v2.(*Replacer)",
        "github.com/caddyserver/caddy/v2/modules/caddyhttp/headers.",
        "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode.",
    ),
    "scheduler (runtime)": (
        "runtime.schedule",
        "runtime.findrunnable",
        "runtime.findRunnable",
        "runtime.mcall",
    ),
}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one protobuf message: varints as ints, length-delimited as bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield num, wire, value
        elif wire == 2:
            n, i = _varint(buf, i)
            yield num, wire, buf[i : i + n]
            i += n
        elif wire == 1:
            yield num, wire, int.from_bytes(buf[i : i + 8], "little")
            i += 8
        elif wire == 5:
            yield num, wire, int.from_bytes(buf[i : i + 4], "little")
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _ints(wire: int, value: int | bytes) -> list[int]:
    """A repeated integer field: packed (bytes of varints) or one varint."""
    if wire == 0:
        return [int(value)]  # type: ignore[arg-type]
    assert isinstance(value, bytes)
    out, i = [], 0
    while i < len(value):
        v, i = _varint(value, i)
        out.append(v)
    return out


@dataclass
class Profile:
    sample_types: list[tuple[str, str]] = field(default_factory=list)
    samples: list[tuple[list[int], list[int]]] = field(default_factory=list)  # (location ids, values)
    locations: dict[int, list[int]] = field(default_factory=dict)  # id -> function ids, innermost first
    functions: dict[int, str] = field(default_factory=dict)  # id -> name

    def stack(self, location_ids: list[int]) -> list[str]:
        """Function names of one sample, leaf first (inlined calls expanded)."""
        return [self.functions.get(f, "?") for loc in location_ids for f in self.locations.get(loc, [])]


def parse(data: bytes) -> Profile:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    strings: list[str] = []
    raw_types, raw_functions = [], []
    prof = Profile()
    for num, _wire, value in fields(data):
        if num == 1 and isinstance(value, bytes):
            raw_types.append(value)
        elif num == 2 and isinstance(value, bytes):
            locs: list[int] = []
            vals: list[int] = []
            for n, w, v in fields(value):
                if n == 1:
                    locs += _ints(w, v)
                elif n == 2:
                    vals += _ints(w, v)
            prof.samples.append((locs, vals))
        elif num == 4 and isinstance(value, bytes):
            loc_id, funcs = 0, []
            for n, _w, v in fields(value):
                if n == 1:
                    loc_id = int(v)  # type: ignore[arg-type]
                elif n == 4 and isinstance(v, bytes):
                    funcs += [int(fv) for fn, _fw, fv in fields(v) if fn == 1]  # type: ignore[arg-type]
            prof.locations[loc_id] = funcs
        elif num == 5 and isinstance(value, bytes):
            raw_functions.append(value)
        elif num == 6 and isinstance(value, bytes):
            strings.append(value.decode("utf-8", "replace"))
    for raw in raw_types:
        parts = {n: int(v) for n, _w, v in fields(raw)}  # type: ignore[arg-type]
        prof.sample_types.append((strings[parts.get(1, 0)], strings[parts.get(2, 0)]))
    for raw in raw_functions:
        parts = {n: int(v) for n, _w, v in fields(raw) if n in (1, 2)}  # type: ignore[arg-type]
        prof.functions[parts.get(1, 0)] = strings[parts.get(2, 0)]
    return prof


def report(prof: Profile, top: int = 25) -> str:
    """Flat and cumulative shares of the last sample value (CPU nanoseconds in a CPU profile), and the groups."""
    idx = len(prof.sample_types) - 1
    total = sum(vals[idx] for _locs, vals in prof.samples) or 1
    flat: Counter[str] = Counter()
    cum: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    for locs, vals in prof.samples:
        names = prof.stack(locs)
        if not names:
            continue
        flat[names[0]] += vals[idx]
        for name in set(names):
            cum[name] += vals[idx]
        for group, prefixes in GROUPS.items():
            if any(name.startswith(prefixes) for name in names):
                groups[group] += vals[idx]
    unit = prof.sample_types[idx] if prof.sample_types else ("?", "?")
    lines = [
        f"total {total / 1e9:.2f} s of {unit[0]}/{unit[1]} in {len(prof.samples)} stacks",
        "",
        "groups (cum):",
    ]
    lines += [f"  {share / total:6.1%}  {name}" for name, share in groups.most_common()]
    lines += ["", "flat:"] + [f"  {v / total:6.1%}  {name}" for name, v in flat.most_common(top)]
    lines += ["", "cumulative:"] + [f"  {v / total:6.1%}  {name}" for name, v in cum.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(report(parse(args.profile.read_bytes()), args.top))


if __name__ == "__main__":
    main()
