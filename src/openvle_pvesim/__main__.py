"""`openvle-pvesim` / `python -m openvle_pvesim`: serve a simulated PVE cluster.

Prints one JSON line (url, version, tokens, passwords, ca_file) once listening, then serves until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from openvle_pvesim.harness import Simulator, parse_token, run_simulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openvle-pvesim", description="A Proxmox VE API simulator (HTTP/HTTPS)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8006, help="port; 0 picks a free one (8006)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh CA")
    parser.add_argument("--pve-version", choices=("9.1", "8.4"), default="9.1")
    parser.add_argument("--seed", default="demo", help="demo, empty or a PATH.json")
    parser.add_argument("--vms", type=int, default=0, help="extra VMs in the pool")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="0 = instant tasks, 1 = realistic"
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        type=_token,
        metavar="USER@REALM!ID=SECRET",
        help="an extra API token (repeatable); openvle@pve tokens get the OpenVLE ACLs, "
        "others full rights",
    )
    parser.add_argument(
        "--stats-interval",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="seconds between pvestatd-like stats rounds, real time "
        "(default: 10 x --time-scale, at least 0.05)",
    )
    parser.add_argument("--faults", default="", help="fault spec, see docs/reference/simulator.md")
    parser.add_argument("--random-seed", type=int, default=0)
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value


def _token(text: str) -> tuple[str, str]:
    try:
        return parse_token(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def announce(sim: Simulator) -> str:
    """The start-up line: everything a client needs to connect."""
    ca_file = str(sim.ca_file) if sim.ca_file else None
    return json.dumps(
        {
            "url": sim.url,
            "hostname": sim.hostname,
            "version": sim.version,
            "tokens": sim.tokens,
            "passwords": sim.passwords,
            "ca_file": ca_file,
        }
    )


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with run_simulator(
        version=args.pve_version,
        seed=args.seed,
        tls=args.tls,
        time_scale=args.time_scale,
        vms=args.vms,
        tokens=args.token,
        faults=args.faults,
        random_seed=args.random_seed,
        stats_interval=args.stats_interval,
        host=args.host,
        port=args.port,
    ) as sim:
        print(announce(sim), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except (ValueError, OSError) as exc:
        print(f"openvle-pvesim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
