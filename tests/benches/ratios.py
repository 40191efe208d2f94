#!/usr/bin/env python3
"""Prints the ratios the benchmarks promise, from criterion's results in target/criterion.

Run `cargo bench` first. Exits 1 if a promise is broken:
  - drawing the ladder for 1 000 000 steps costs at most 2x drawing it for 100 (with two
    lifelines, and with five);
  - a frame across three routers costs at most 4x a frame across none;
  - a tapped loopback transfer reaches at least 0.9x the untapped throughput;
  - a TLS transfer whose records are tapped (named, opened) reaches at least 0.8x the untapped one;
  - an IMAP FETCH of 10 000 messages recorded as steps runs at at least 0.5x the untapped rate.
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parents[2] / "target" / "criterion"


def mean_ns(*parts):
    path = root.joinpath(*parts, "new", "estimates.json")
    if not path.exists():
        sys.exit(f"no results at {path}: run `cargo bench` first")
    return json.loads(path.read_text())["mean"]["point_estimate"]


ok = True
small, mid, big = (mean_ns("ladder_frame", str(n)) for n in (100, 10000, 1000000))
ratio = big / small
print(f"ladder frame at 200x60: 100 steps {small/1e3:.1f} µs, 10 000 {mid/1e3:.1f} µs, "
      f"1 000 000 {big/1e3:.1f} µs  ->  ratio {ratio:.2f}x (limit 2x)")
ok &= ratio <= 2.0

small5, big5 = mean_ns("ladder_frame_5", "100"), mean_ns("ladder_frame_5", "1000000")
print(f"ladder frame with 5 lifelines: 100 steps {small5/1e3:.1f} µs, 1 000 000 {big5/1e3:.1f} µs"
      f"  ->  ratio {big5 / small5:.2f}x (limit 2x)")
ok &= big5 / small5 <= 2.0

direct, routed = mean_ns("routed", "direct"), mean_ns("routed", "three_routers")
print(f"1 MiB on the lab network: direct {direct/1e6:.1f} ms, across 3 routers {routed/1e6:.1f} ms"
      f"  ->  ratio {routed / direct:.2f}x (limit 4x; a frame is 4 steps there, 1 here: a step across"
      f" a router costs {routed / 4 / direct:.2f}x a direct one)")
ok &= routed / direct <= 4.0

untapped, tapped = mean_ns("loopback_256MiB", "untapped"), mean_ns("loopback_256MiB", "tapped")
mib = 256
print(f"256 MiB over loopback: untapped {mib / (untapped / 1e9):.0f} MiB/s, tapped {mib / (tapped / 1e9):.0f} MiB/s"
      f"  ->  tapped/untapped {untapped / tapped:.2f}x (floor 0.9x)")
ok &= untapped / tapped >= 0.9

untapped, tapped = mean_ns("tls_loopback_64MiB", "untapped"), mean_ns("tls_loopback_64MiB", "tapped")
print(f"64 MiB inside TLS 1.3 over loopback: untapped {64 / (untapped / 1e9):.0f} MiB/s, tapped (records named and"
      f" opened) {64 / (tapped / 1e9):.0f} MiB/s  ->  tapped/untapped {untapped / tapped:.2f}x (floor 0.8x)")
ok &= untapped / tapped >= 0.8

untapped, tapped = mean_ns("imap_fetch_10k", "untapped"), mean_ns("imap_fetch_10k", "tapped")
print(f"IMAP FETCH of 10 000 messages: untapped {10000 / (untapped / 1e9):.0f} messages/s, tapped (a step each)"
      f" {10000 / (tapped / 1e9):.0f} messages/s  ->  tapped/untapped {untapped / tapped:.2f}x (floor 0.5x)")
ok &= untapped / tapped >= 0.5

transfer = mean_ns("sim_wire", "transfer_10MiB")
decode = mean_ns("record_frame", "decode_data_segment")
print(f"sim wire: 10 MiB in play mode at {10 / (transfer / 1e9):.0f} MiB/s; decoding a data frame into a step {decode / 1e3:.1f} µs")
gib = root / "sim_1GiB.json"
if gib.exists():
    g = json.loads(gib.read_text())
    print(f"sim wire, 1 GiB: {g['steps']} frame steps, {g['kept_bytes'] / 2**20:.1f} MiB of frame bytes kept, "
          f"peak RSS {g['peak_rss_mib']:.0f} MiB (limit 256 MiB)")
    ok &= g["peak_rss_mib"] < 256

print("ok" if ok else "a promise is broken")
sys.exit(0 if ok else 1)
